/**
 * The PV console ring (xen/include/public/io/console.h): one page shared by
 * a guest and xenconsoled, found through HVM_PARAM_CONSOLE_PFN (or grant ref
 * GNTTAB_RESERVED_CONSOLE) and signalled on HVM_PARAM_CONSOLE_EVTCHN.
 *
 * struct xencons_interface {
 *     char in[1024];    guest <- xenconsoled (keyboard)
 *     char out[2048];   guest -> xenconsoled (output)
 *     XENCONS_RING_IDX in_cons, in_prod, out_cons, out_prod;
 *     uint8_t connection;
 * };
 * Indexes are free-running u32, masked with size - 1 (MASK_XENCONS_IDX).
 */
export const XENCONS_RING = {
  IN: 0,
  IN_SIZE: 1024,
  OUT: 1024,
  OUT_SIZE: 2048,
  IN_CONS: 3072,
  IN_PROD: 3076,
  OUT_CONS: 3080,
  OUT_PROD: 3084,
  CONNECTION: 3088,
  /** Bytes the structure occupies in its page. */
  SIZE: 3092,
} as const;

/** `connection` values (console.h): the backend sets CONNECTED when it will service the ring. */
export const XENCONSOLE_CONNECTED = 0;
export const XENCONSOLE_DISCONNECTED = 1;

/** MASK_XENCONS_IDX(idx, ring): position of a free-running index in a ring of `size` bytes. */
export const maskXenconsIdx = (idx: number, size: number): number => idx & (size - 1);
