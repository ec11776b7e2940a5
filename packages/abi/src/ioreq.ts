/**
 * The ioreq interface between the hypervisor and an HVM guest's device model
 * (DESIGN §10; Xen's xen/include/public/hvm/ioreq.h and hvm/dm_op.h).
 *
 * A device model (the guest's stub domain, or dom0) registers as the
 * guest's ioreq server for MMIO ranges (XEN_DMOP_create_ioreq_server +
 * XEN_DMOP_map_io_range_to_ioreq_server).  A guest access to such a range
 * leaves the vCPU and is pushed to the device model as an `hvm.ioreq` event
 * (ioreq_t: addr, size, dir, data); the device model answers with
 * `hvm.ioreq_server.complete` (STATE_IORESP_READY) and the vCPU resumes.
 * Writes to ranges registered `posted` do not stop the vCPU: they queue in a
 * shared ring and reach the device model in batches, ahead of the next
 * synchronous request (Xen's buffered ioreq page, buf_ioreq_t), so the device
 * model sees every access in guest order.
 *
 * Registers that firmware polls (the UART's LSR ~740,000 times on the way to
 * U-Boot's prompt) never leave the hypervisor: the device model keeps their
 * current value in a *register mirror* (`hvm.ioreq_server.set_mirror`, or
 * along with a completion), and the vCPU's pCPU answers reads of a mirrored
 * register itself.  A mirrored register must be side-effect free to read.
 *
 * | op                               | who                  | Xen counterpart                              |
 * |----------------------------------|----------------------|----------------------------------------------|
 * | hvm.ioreq_server.register        | dom0 / its stubdom   | XEN_DMOP_create_ioreq_server + map_io_range  |
 * | hvm.ioreq_server.complete        | the server           | ioreq state -> STATE_IORESP_READY + notify   |
 * | hvm.ioreq_server.set_mirror      | the server           | (xenbox: register mirror)                    |
 * | hvm.set_irq_level                | the server           | XEN_DMOP_set_irq_level                       |
 * | hvm.console_output               | the server           | (QEMU's serial chardev -> the guest console) |
 * | hvm.remote_shutdown              | the server           | XEN_DMOP_remote_shutdown                     |
 * | hvm.ioreq_server.info            | dom0 / its stubdom   | XEN_DMOP_get_ioreq_server_info (+ counters)  |
 *
 * Events to the server: `hvm.ioreq` (requests), `hvm.console_input` (keyboard
 * bytes for the guest's serial console, from xenconsoled) and
 * `hvm.ioreq_server.destroyed` (the target is gone: stop serving).
 */
import type { DomId } from './domid.js';
import type { ShutdownReason } from './domain.js';

/** One MMIO range a server claims; `posted`: writes need no reply and may be buffered. */
export interface IoreqRange {
  base: number;
  size: number;
  posted?: boolean;
}

/** A mirrored register: reads of exactly (addr, size) are answered with value by the hypervisor. */
export interface MirrorReg {
  addr: number;
  size: number;
  value: number;
}

/** A synchronous request (ioreq_t with state STATE_IOREQ_READY). */
export interface IoreqRequest {
  /** Completion tag, echoed in hvm.ioreq_server.complete. */
  id: number;
  vcpu: number;
  write: boolean;
  addr: number;
  size: number;
  /** Written value (writes); 0 for reads. */
  value: number;
}

/** `hvm.ioreq`: posted writes first (in guest order, flat [addr, size, value]*), then at most one request. */
export interface IoreqEvent {
  domid: DomId;
  buffered: number[];
  req?: IoreqRequest;
}

export interface IoreqServerInfo {
  domid: DomId;
  /** The server's domain. */
  server: DomId;
  ranges: IoreqRange[];
  mirrored: number;
  /** Counters since registration: requests sent, posted writes sent, the frames they travelled in. */
  syncRequests: number;
  bufferedWrites: number;
  bufferedBatches: number;
  /** Reads the pCPUs answered from the mirror, and writes they posted, without leaving the vCPU. */
  localReads: number;
  postedWrites: number;
}

/** Most ranges and mirrored registers a server may hold (the register page is fixed size). */
export const IOREQ_MAX_RANGES = 16;
export const IOREQ_MAX_MIRRORS = 128;

export interface IoreqHypercalls {
  'hvm.ioreq_server.register': { args: { domid: DomId; ranges: IoreqRange[] }; reply: null };
  'hvm.ioreq_server.complete': { args: { domid: DomId; id: number; value: number; mirror?: MirrorReg[] }; reply: null };
  'hvm.ioreq_server.set_mirror': { args: { domid: DomId; regs: MirrorReg[] }; reply: null };
  'hvm.ioreq_server.info': { args: { domid: DomId }; reply: IoreqServerInfo };
  'hvm.set_irq_level': { args: { domid: DomId; source: number; level: boolean }; reply: null };
  'hvm.console_output': { args: { domid: DomId; data: Uint8Array }; reply: null };
  'hvm.remote_shutdown': { args: { domid: DomId; reason: ShutdownReason }; reply: null };
}
export type IoreqHypercallOp = keyof IoreqHypercalls;

export interface IoreqEvents {
  'hvm.ioreq': IoreqEvent;
  'hvm.console_input': { domid: DomId; data: Uint8Array };
  'hvm.ioreq_server.destroyed': { domid: DomId; reason: string };
}

/** Environment of a device-model process (besides the XENBOX_* domain variables): its target. */
export const ENV_DM_TARGET = 'XENBOX_DM_TARGET';
/** ...and its disks: devids of vbds under its own domain's device/vbd, comma-separated, in virtio-mmio order. */
export const ENV_DM_VBDS = 'XENBOX_DM_VBDS';
/** ...and its NICs: devids of vifs under its own domain's device/vif, comma-separated, in virtio-mmio order. */
export const ENV_DM_VIFS = 'XENBOX_DM_VIFS';
