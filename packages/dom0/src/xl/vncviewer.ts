/**
 * `xl vncviewer [--autopass] DOMAIN` (tools/xl/xl_vnc.c →
 * libxl_vncviewer_exec): start a VNC viewer on the domain's VNC console.
 * libxl reads the address from xenstore (console/vnc-listen, vnc-port) and
 * runs `vncviewer LISTEN:DISPLAY`, with `-autopass` and the password on the
 * viewer's stdin when asked; xenbox reads the address its device model
 * announced ($RUN_DIR/dm/<domid>.json) and the password from the stored
 * domain config.  The viewer is whatever `vncviewer` is first in PATH.
 */
import { spawn } from 'node:child_process';
import { XenError } from '@xenbox/abi';
import { deviceModelOf } from '../libxl/hvm-builder.js';
import { loadUserdata } from '../libxl/userdata.js';
import { describeVnc } from '../libxl/hvm-vnc.js';
import { findDomain, type XlContext } from './context.js';

export const VNCVIEWER = 'vncviewer';

/** Run the viewer until it exits; resolves with its exit status. */
export async function xlVncviewer(ctx: XlContext, spec: string, opts: { autopass?: boolean } = {}): Promise<number> {
  const dom = await findDomain(ctx, spec);
  const ep = deviceModelOf(ctx.runDir, dom.domid)?.vnc;
  if (!ep) throw new XenError('ENODEV', `${dom.name} has no VNC console (an HVM guest gets one with vnc = 1 in its config)`);
  const passwd = opts.autopass ? loadUserdata(ctx.runDir, dom.domid)?.vnc?.passwd : undefined;
  await ctx.close(); // the viewer may run for hours: no dom0 connection held meanwhile
  const args = [`${ep.host}:${ep.display}`, ...(passwd !== undefined ? ['-autopass'] : [])];
  return new Promise((resolve, reject) => {
    const child = spawn(VNCVIEWER, args, { stdio: [passwd !== undefined ? 'pipe' : 'inherit', 'inherit', 'inherit'] });
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'ENOENT' ? new XenError('ENOENT', `no ${VNCVIEWER} in PATH; ${dom.name}'s ${describeVnc(ep)}`) : new XenError('EIO', `${VNCVIEWER}: ${e.message}`)),
    );
    if (passwd !== undefined) child.stdin!.end(`${passwd}\n`);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
