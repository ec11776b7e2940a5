/**
 * Foreign memory, like libxenforeignmemory: dom0 (or a stub domain over
 * its target) reads and writes another domain's pages.  Each call is one
 * page-bounded access; the hypervisor checks privilege (XSM_TARGET).
 */
import type { DomId } from '@xenbox/abi';
import type { HypervisorConnection } from './hypervisor-connection.js';

export class ForeignMemory {
  constructor(private readonly hv: HypervisorConnection) {}

  read(domid: DomId, gfn: number, offset = 0, len?: number): Promise<Uint8Array> {
    return this.hv.call('foreign.read', { domid, gfn, offset, len });
  }

  async write(domid: DomId, gfn: number, offset: number, data: Uint8Array): Promise<void> {
    await this.hv.call('foreign.write', { domid, gfn, offset, data });
  }
}
