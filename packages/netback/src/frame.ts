/** A packet on its way through a bridge: Ethernet bytes plus the checksum state the sender declared. */
export interface Frame {
  /** Ethernet header and payload (no FCS). */
  data: Uint8Array;
  /** NETTXF_csum_blank from the sender: the L4 checksum is still to be filled in (offload). */
  csumBlank: boolean;
  /** NETTXF_data_validated from the sender. */
  dataValidated: boolean;
}

/** Something a bridge forwards to: a vif's receive side. */
export interface BridgePort {
  /** vif<domid>.<devid>, as Linux names the backend interface. */
  readonly name: string;
  /** Queue a frame for the guest behind this port (never blocks; drops when full). */
  deliver(frame: Frame): void;
}

/** The 48-bit address at `offset` as a number (a cheap map key). */
export function macKey(b: Uint8Array, offset: number): number {
  return (b[offset]! * 2 ** 40) + (b[offset + 1]! * 2 ** 32) + ((b[offset + 2]! << 24) >>> 0) + (b[offset + 3]! << 16) + (b[offset + 4]! << 8) + b[offset + 5]!;
}
