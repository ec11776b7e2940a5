/**
 * A flattened device tree (DTB, version 17) writer, per the Devicetree
 * Specification v0.4 ch. 5: header, memory reservation block, structure
 * block (BEGIN_NODE/PROP/END_NODE/END tokens) and strings block, big-endian.
 */

/** A property value: cells (u32 array), a string, a string list, raw bytes, or empty (true). */
export type FdtValue = number[] | string | string[] | Uint8Array | true;

export interface FdtNode {
  name: string;
  props: [string, FdtValue][];
  children: FdtNode[];
}

export const node = (name: string, props: [string, FdtValue][] = [], children: FdtNode[] = []): FdtNode => ({ name, props, children });

/** Cells of a 64-bit number as two u32 (for #address-cells = 2 / #size-cells = 2). */
export const u64Cells = (v: number): number[] => [Math.floor(v / 4294967296), v >>> 0];

const FDT_MAGIC = 0xd00dfeed;
const FDT_BEGIN_NODE = 1, FDT_END_NODE = 2, FDT_PROP = 3, FDT_END = 9;

function encodeValue(v: FdtValue): Uint8Array {
  if (v === true) return new Uint8Array(0);
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return new TextEncoder().encode(v + '\0');
  if (v.length > 0 && typeof v[0] === 'string') return new TextEncoder().encode((v as string[]).map((s) => s + '\0').join(''));
  const out = new Uint8Array(v.length * 4);
  const dv = new DataView(out.buffer);
  (v as number[]).forEach((c, i) => dv.setUint32(i * 4, c >>> 0));
  return out;
}

/** Serialise a tree (root node name '') into a DTB. */
export function writeFdt(root: FdtNode, bootCpuId = 0): Uint8Array {
  const struct: number[] = [];
  const strings: number[] = [];
  const stringOffsets = new Map<string, number>();
  const u32 = (v: number): void => { struct.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff); };
  const bytes = (b: Uint8Array): void => {
    for (const x of b) struct.push(x);
    while (struct.length % 4) struct.push(0);
  };
  const stringOffset = (s: string): number => {
    let off = stringOffsets.get(s);
    if (off === undefined) {
      off = strings.length;
      stringOffsets.set(s, off);
      for (const x of new TextEncoder().encode(s)) strings.push(x);
      strings.push(0);
    }
    return off;
  };
  const emit = (n: FdtNode): void => {
    u32(FDT_BEGIN_NODE);
    bytes(new TextEncoder().encode(n.name + '\0'));
    for (const [name, value] of n.props) {
      const data = encodeValue(value);
      u32(FDT_PROP);
      u32(data.length);
      u32(stringOffset(name));
      bytes(data);
    }
    for (const c of n.children) emit(c);
    u32(FDT_END_NODE);
  };
  emit(root);
  u32(FDT_END);

  const HEADER = 40;
  const rsvOff = HEADER; // one empty reservation entry (16 zero bytes), 8-aligned
  const structOff = rsvOff + 16;
  const stringsOff = structOff + struct.length;
  const total = stringsOff + strings.length;
  const out = new Uint8Array(Math.ceil(total / 8) * 8);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, FDT_MAGIC);
  dv.setUint32(4, out.length);
  dv.setUint32(8, structOff);
  dv.setUint32(12, stringsOff);
  dv.setUint32(16, rsvOff);
  dv.setUint32(20, 17); // version
  dv.setUint32(24, 16); // last compatible version
  dv.setUint32(28, bootCpuId);
  dv.setUint32(32, strings.length);
  dv.setUint32(36, struct.length);
  out.set(struct, structOff);
  out.set(strings, stringsOff);
  return out;
}
