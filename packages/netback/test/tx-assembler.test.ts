import { describe, expect, it } from 'vitest';
import {
  NETTXF_extra_info,
  NETTXF_more_data,
  XEN_NETIF_EXTRA_FLAG_MORE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_EXTRA_TYPE_MCAST_ADD,
  encodeExtraInfo,
  encodeTxRequest,
} from '@xenbox/abi';
import { TxAssembler, type TxUnit } from '@xenbox/netback';

const slot = (size: number, flags = 0, offset = 0, id = 0) => encodeTxRequest({ gref: 10, offset, flags, id, size });
const extra = (type: number, flags = 0) => {
  const b = new Uint8Array(12);
  b.set(encodeExtraInfo({ type, flags, data: new Uint8Array(6) }));
  return b;
};

function feed(asm: TxAssembler, slots: Uint8Array[]): TxUnit[] {
  const out: TxUnit[] = [];
  for (const s of slots) {
    const u = asm.push(s);
    if (u) out.push(u);
  }
  return out;
}

describe('tx slot assembly and checks (Linux xenvif_tx_build_gops / xenvif_count_requests)', () => {
  it('assembles a 3-slot packet: first slot holds the total, its own length is total minus the fragments', () => {
    const [u] = feed(new TxAssembler(), [slot(9000, NETTXF_more_data), slot(4096, NETTXF_more_data), slot(808)]);
    expect(u!.error).toBeNull();
    expect(u!.size).toBe(9000);
    expect(u!.slots.map((s) => s.len)).toEqual([4096, 4096, 808]);
  });

  it('refuses packets shorter than an Ethernet header, fragments larger than the packet, and slots crossing the page', () => {
    const asm = new TxAssembler();
    expect(feed(asm, [slot(0)])[0]!.error).toMatch(/shorter than an Ethernet header/);
    expect(feed(asm, [slot(13)])[0]!.error).toMatch(/shorter/);
    expect(feed(asm, [slot(100, NETTXF_more_data), slot(200)])[0]!.error).toMatch(/more than the packet/);
    expect(feed(asm, [slot(200, 0, 4000)])[0]!.error).toMatch(/crosses the page/);
    expect(feed(asm, [slot(65535)])[0]!.error).toMatch(/crosses the page/);
    expect(feed(asm, [slot(4096 + 100, NETTXF_more_data), slot(100, 0, 3997)])[0]!.error).toMatch(/crosses the page/);
    expect(feed(asm, [slot(14)])[0]!.error).toBeNull();
  });

  it('accepts 18 slots, refuses the 19th and every slot after it until the chain ends', () => {
    const asm = new TxAssembler();
    const ok = feed(asm, Array.from({ length: 18 }, (_, i) => slot(i === 0 ? 18 * 60 : 60, i < 17 ? NETTXF_more_data : 0)));
    expect(ok).toHaveLength(1);
    expect(ok[0]!.error).toBeNull();
    const bad = feed(asm, Array.from({ length: 30 }, (_, i) => slot(60, i < 29 ? NETTXF_more_data : 0)));
    expect(bad[0]!.slots).toHaveLength(18);
    expect(bad[0]!.error).toMatch(/more than 18 slots/);
    expect(bad.slice(1)).toHaveLength(12);
    expect(bad.slice(1).every((u) => u.error === 'rest of a refused chain' && u.slots.length === 1)).toBe(true);
    expect(asm.partial).toBe(false);
    expect(feed(asm, [slot(60)])[0]!.error).toBeNull();
  });

  it('keeps an unfinished chain pending across rounds', () => {
    const asm = new TxAssembler();
    expect(feed(asm, [slot(200, NETTXF_more_data)])).toHaveLength(0);
    expect(asm.partial).toBe(true);
    const [u] = feed(asm, [slot(100)]);
    expect(u!.size).toBe(200);
  });

  it('answers extra-info slots: GSO refused (not offered), a multicast-control dummy accepted, an invalid type refused with its chain', () => {
    const asm = new TxAssembler();
    const [g] = feed(asm, [slot(60, NETTXF_extra_info), extra(XEN_NETIF_EXTRA_TYPE_GSO)]);
    expect(g!.error).toMatch(/GSO/);
    expect(g!.slots.map((s) => s.extra)).toEqual([false, true]);
    const [m] = feed(asm, [slot(0, NETTXF_extra_info), extra(XEN_NETIF_EXTRA_TYPE_MCAST_ADD)]);
    expect(m!.error).toBeNull();
    expect(m!.size).toBe(0);
    const units = feed(asm, [slot(200, NETTXF_extra_info | NETTXF_more_data), extra(9, XEN_NETIF_EXTRA_FLAG_MORE), extra(XEN_NETIF_EXTRA_TYPE_MCAST_ADD), slot(100)]);
    expect(units[0]!.error).toMatch(/invalid extra-info type 9/);
    expect(units.slice(1).map((u) => u.slots[0]!.extra)).toEqual([true, false]);
    expect(asm.partial).toBe(false);
  });
});
