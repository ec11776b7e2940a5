/**
 * EVTCHNOP_* (xen/common/event_channel.c).  Error numbers are Xen's:
 * an invalid or free port is EINVAL, a missing domain ESRCH, no privilege
 * EPERM, a taken VIRQ EEXIST, no free port ENOSPC.
 */
import {
  DOMID_SELF,
  NR_VIRQS,
  PER_VCPU_VIRQS,
  XenError,
  argDomIdOrSelf,
  argInt,
  argObject,
  type EvtchnPort,
  type EvtchnStatusReply,
} from '@xenbox/abi';
import type { Hypervisor } from '../hypervisor.js';
import type { Domain } from './domain.js';
import type { HypercallTable } from './hypercall-table.js';
import { resolveDomId, targetDomain } from './xsm.js';

const U32 = 0xffff_ffff;

/** evtchn_alloc_unbound(). */
export function allocUnbound(hv: Hypervisor, caller: Domain, dom: number, remoteDom: number): EvtchnPort {
  const op = 'evtchn.alloc_unbound';
  const d = targetDomain(op, caller, hv.domains, dom);
  const port = d.evtchn.allocPort();
  const ch = d.evtchn.channel(port);
  ch.state = 'unbound';
  ch.remoteDom = remoteDom === DOMID_SELF ? caller.domid : remoteDom;
  return port;
}

/** evtchn_bind_interdomain(): bind to a remote port offered (unbound) to the caller. */
export function bindInterdomain(hv: Hypervisor, ld: Domain, remoteDom: number, rport: number): EvtchnPort {
  const op = 'evtchn.bind_interdomain';
  const rd = hv.domains.get(resolveDomId(ld, remoteDom));
  if (!rd || rd.dying) throw new XenError('ESRCH', `${op}: no domain ${remoteDom}`);
  const lport = ld.evtchn.allocPort();
  if (!rd.evtchn.isValid(rport)) throw new XenError('EINVAL', `${op}: d${rd.domid} port ${rport} is not a valid port`);
  const rchn = rd.evtchn.channel(rport);
  if (rchn.state !== 'unbound' || rchn.remoteDom !== ld.domid) {
    throw new XenError('EINVAL', `${op}: d${rd.domid} port ${rport} is not offered to d${ld.domid}`);
  }
  if (rd === ld && rport === lport) throw new XenError('EINVAL', `${op}: cannot bind a port to itself`);
  const lchn = ld.evtchn.channel(lport);
  Object.assign(lchn, { state: 'interdomain', remoteDom: rd.domid, remotePort: rport });
  Object.assign(rchn, { state: 'interdomain', remoteDom: ld.domid, remotePort: lport });
  // "We may have lost notifications on the remote unbound port": set the local port pending.
  hv.setPending(ld, lport);
  return lport;
}

/** evtchn_bind_virq(). */
export function bindVirq(hv: Hypervisor, d: Domain, virq: number, vcpu: number): EvtchnPort {
  const op = 'evtchn.bind_virq';
  if (virq < 0 || virq >= NR_VIRQS) throw new XenError('EINVAL', `${op}: virq ${virq} out of range`);
  if (!PER_VCPU_VIRQS.includes(virq) && vcpu !== 0) throw new XenError('EINVAL', `${op}: global virq ${virq} must be bound on vCPU 0`);
  if (vcpu >= d.maxVcpus) throw new XenError('ENOENT', `${op}: no vCPU ${vcpu}`);
  if (d.evtchn.virqPort(virq, vcpu) !== undefined) throw new XenError('EEXIST', `${op}: virq ${virq} is already bound on vCPU ${vcpu}`);
  const port = d.evtchn.allocPort();
  Object.assign(d.evtchn.channel(port), { state: 'virq', virq, vcpu });
  d.evtchn.setVirqPort(virq, vcpu, port);
  return port;
}

export function bindIpi(d: Domain, vcpu: number): EvtchnPort {
  if (vcpu >= d.maxVcpus) throw new XenError('ENOENT', `evtchn.bind_ipi: no vCPU ${vcpu}`);
  const port = d.evtchn.allocPort();
  Object.assign(d.evtchn.channel(port), { state: 'ipi', vcpu });
  return port;
}

/** evtchn_send(). */
export function send(hv: Hypervisor, ld: Domain, port: number): void {
  const ch = ld.evtchn.require(port, 'evtchn.send');
  switch (ch.state) {
    case 'interdomain': {
      const rd = hv.domains.get(ch.remoteDom);
      if (rd) hv.setPending(rd, ch.remotePort, ld);
      return;
    }
    case 'ipi':
      hv.setPending(ld, port, ld);
      return;
    case 'unbound':
      return; // silently drop the notification, as Xen does
    default:
      throw new XenError('EINVAL', `evtchn.send: port ${port} is ${ch.state}`);
  }
}

/**
 * evtchn_close(): free the port; the remote end of an interdomain channel
 * goes back to unbound (offered to us again) and is told.
 */
export function close(hv: Hypervisor, d: Domain, port: number, reason = 'closed by the remote domain'): void {
  const ch = d.evtchn.require(port, 'evtchn.close');
  switch (ch.state) {
    case 'free':
    case 'reserved':
      throw new XenError('EINVAL', `evtchn.close: port ${port} is not bound`);
    case 'virq':
      d.evtchn.setVirqPort(ch.virq, ch.vcpu, undefined);
      break;
    case 'interdomain': {
      const rd = hv.domains.get(ch.remoteDom);
      const rchn = rd?.evtchn.isValid(ch.remotePort) ? rd.evtchn.channel(ch.remotePort) : undefined;
      if (rd && rchn && rchn.state === 'interdomain' && rchn.remoteDom === d.domid && rchn.remotePort === port) {
        Object.assign(rchn, { state: 'unbound', remoteDom: d.domid, remotePort: 0 });
        hv.tellPeerClosed(rd, ch.remotePort, d.domid, reason);
      }
      break;
    }
    default:
      break;
  }
  d.evtchn.free(port);
}

export function closeAll(hv: Hypervisor, d: Domain, reason: string): void {
  for (const port of d.evtchn.boundPorts()) close(hv, d, port, reason);
}

/** evtchn_status(). */
export function status(hv: Hypervisor, caller: Domain, dom: number, port: number): EvtchnStatusReply {
  const op = 'evtchn.status';
  const d = targetDomain(op, caller, hv.domains, dom);
  const ch = d.evtchn.require(port, op);
  switch (ch.state) {
    case 'free':
    case 'reserved':
      return { status: 'closed', vcpu: ch.vcpu };
    case 'unbound':
      return { status: 'unbound', vcpu: ch.vcpu, dom: ch.remoteDom };
    case 'interdomain':
      return { status: 'interdomain', vcpu: ch.vcpu, dom: ch.remoteDom, port: ch.remotePort };
    case 'virq':
      return { status: 'virq', vcpu: ch.vcpu, virq: ch.virq };
    case 'ipi':
      return { status: 'ipi', vcpu: ch.vcpu };
  }
}

export function evtchnOps(hv: Hypervisor): HypercallTable {
  return {
    'evtchn.alloc_unbound': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'evtchn.alloc_unbound';
        const a = argObject(op, raw);
        return { port: allocUnbound(hv, caller, argDomIdOrSelf(op, a, 'dom'), argDomIdOrSelf(op, a, 'remote_dom')) };
      },
    },
    'evtchn.bind_interdomain': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'evtchn.bind_interdomain';
        const a = argObject(op, raw);
        return { local_port: bindInterdomain(hv, caller, argDomIdOrSelf(op, a, 'remote_dom'), argInt(op, a, 'remote_port', 0, U32)) };
      },
    },
    'evtchn.bind_virq': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'evtchn.bind_virq';
        const a = argObject(op, raw);
        return { port: bindVirq(hv, caller, argInt(op, a, 'virq', 0, U32), argInt(op, a, 'vcpu', 0, U32)) };
      },
    },
    'evtchn.bind_ipi': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'evtchn.bind_ipi';
        return { port: bindIpi(caller, argInt(op, argObject(op, raw), 'vcpu', 0, U32)) };
      },
    },
    'evtchn.send': {
      priv: 'hook',
      handle(caller, raw) {
        send(hv, caller, argInt('evtchn.send', argObject('evtchn.send', raw), 'port', 0, U32));
        return null;
      },
    },
    'evtchn.close': {
      priv: 'hook',
      handle(caller, raw) {
        close(hv, caller, argInt('evtchn.close', argObject('evtchn.close', raw), 'port', 0, U32));
        return null;
      },
    },
    'evtchn.status': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'evtchn.status';
        const a = argObject(op, raw);
        return status(hv, caller, argDomIdOrSelf(op, a, 'dom'), argInt(op, a, 'port', 0, U32));
      },
    },
    'evtchn.unmask': {
      priv: 'hook',
      handle(caller, raw) {
        const port = argInt('evtchn.unmask', argObject('evtchn.unmask', raw), 'port', 0, U32);
        caller.evtchn.require(port, 'evtchn.unmask');
        if (caller.evtchn.unmask(port)) hv.kick(caller, caller.evtchn.channel(port).vcpu);
        return null;
      },
    },
    'evtchn.reset': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'evtchn.reset';
        const d = targetDomain(op, caller, hv.domains, argDomIdOrSelf(op, argObject(op, raw), 'dom'));
        closeAll(hv, d, 'the remote domain reset its event channels');
        return null;
      },
    },
  };
}
