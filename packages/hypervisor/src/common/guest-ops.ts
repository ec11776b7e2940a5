/**
 * Hypercalls about running guests: setting the boot vCPU's context
 * (XEN_DOMCTL_setvcpucontext) and the consoles as xenconsoled sees them.
 * All dom0's (XSM_PRIV).
 */
import { XenError, argBytes, argDomId, argEnum, argInt, argObject, type SetVcpuContextArgs } from '@xenbox/abi';
import type { Hypervisor } from '../hypervisor.js';
import type { HypercallTable } from './hypercall-table.js';

/** Largest register value a context may carry: guest addresses are below 2^53 here. */
const REG_MAX = Number.MAX_SAFE_INTEGER;
const CONSOLE_INPUT_MAX = 4096;

function vcpuContext(op: string, raw: unknown): SetVcpuContextArgs {
  const a = argObject(op, raw);
  const ctx = argObject(`${op} ctx`, a.ctx);
  return {
    domid: argDomId(op, a),
    vcpu: argInt(op, a, 'vcpu', 0, 127),
    ctx: {
      pc: argInt(op, ctx, 'pc', 0, REG_MAX),
      a0: argInt(op, ctx, 'a0', 0, REG_MAX),
      a1: argInt(op, ctx, 'a1', 0, REG_MAX),
      mode: argEnum(op, ctx, 'mode', ['S', 'M'] as const),
    },
  };
}

export function guestOps(hv: Hypervisor): HypercallTable {
  return {
    'domctl.setvcpucontext': {
      priv: 'priv',
      async handle(_caller, raw) {
        const { domid, vcpu, ctx } = vcpuContext('domctl.setvcpucontext', raw);
        if (ctx.a0 !== vcpu) throw new XenError('EINVAL', `domctl.setvcpucontext: a0 is the hartid by the RISC-V boot convention (${vcpu}), not ${ctx.a0}`);
        await hv.guests.setContext(hv.domains.require(domid), vcpu, ctx);
        return null;
      },
    },
    'console.subscribe': {
      priv: 'priv',
      handle(_caller, _raw, ctx) {
        hv.subscribeConsole(ctx.peerKey);
        return null;
      },
    },
    'console.input': {
      priv: 'priv',
      handle(_caller, raw) {
        const op = 'console.input';
        const a = argObject(op, raw);
        const d = hv.domains.require(argDomId(op, a));
        hv.guests.consoleInput(d, argBytes(op, a, 'data', CONSOLE_INPUT_MAX));
        return null;
      },
    },
  };
}
