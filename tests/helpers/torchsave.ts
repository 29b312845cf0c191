/**
 * Test helper: a minimal torch.save *writer* (zip format, pickle protocol 2, stored entries), so tests can build
 * checkpoints with chosen contents (missing / mis-shaped tensors, zip64 records, views) without PyTorch.
 * The pickle it writes has the same shape as torch.save's: tensors are
 * `torch._utils._rebuild_tensor_v2(persistent_id(('storage', torch.XStorage, key, 'cpu', numel)), offset, size,
 * stride, False, OrderedDict())`, state dicts are `collections.OrderedDict`.
 */
import { open } from 'node:fs/promises';
import { crc32, deflateRawSync } from 'node:zlib';
import type { DType, HostTensor } from '../../src/hosttensor.js';

const STORAGE_NAME: Record<DType, string> = {
  float32: 'FloatStorage', float64: 'DoubleStorage', float16: 'HalfStorage', bfloat16: 'BFloat16Storage',
  int64: 'LongStorage', int32: 'IntStorage', int16: 'ShortStorage', int8: 'CharStorage', uint8: 'ByteStorage',
  bool: 'BoolStorage',
};

/** A tensor to save; `view` makes it a strided view into the storage of `view.base` (a HostTensor saved elsewhere). */
export interface SaveTensor {
  kind: 'tensor';
  t: HostTensor;
  view?: { base: HostTensor; offset: number; shape: number[]; stride: number[] };
  parameter?: boolean;
  /** write as torch 2.x `_rebuild_tensor_v3` over an UntypedStorage (dtype passed separately) */
  v3?: boolean;
}
export const T = (t: HostTensor, parameter = false): SaveTensor => ({ kind: 'tensor', t, parameter });
export interface PyTuple { kind: 'tuple'; items: PyVal[] }
export interface PyObj { kind: 'obj'; module: string; name: string; state: Map<string, PyVal> }
export interface PyODict { kind: 'odict'; m: Map<PyVal, PyVal> }
export type PyVal = null | boolean | number | string | PyVal[] | Map<PyVal, PyVal> | SaveTensor | PyTuple | PyObj | PyODict;

export const tuple = (...items: PyVal[]): PyTuple => ({ kind: 'tuple', items });
/** an object of an arbitrary class: cls(*args) then BUILD(state) */
export const obj = (module: string, name: string, state: Map<string, PyVal>): PyObj => ({ kind: 'obj', module, name, state });
/** an OrderedDict (plain Map values are written as dict) */
export const odict = (m: Map<PyVal, PyVal>): PyODict => ({ kind: 'odict', m });

class Bytes {
  private parts: Buffer[] = [];
  u8(...v: number[]): void { this.parts.push(Buffer.from(v)); }
  buf(b: Uint8Array): void { this.parts.push(Buffer.from(b)); }
  u32(v: number): void { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.parts.push(b); }
  str(s: string): void { const b = Buffer.from(s, 'utf8'); this.u8(0x58); this.u32(b.length); this.parts.push(b); }
  done(): Buffer { return Buffer.concat(this.parts); }
}

/** Pickle `value` (protocol 2) and collect the storages it references. */
export function picklePy(value: PyVal): { pkl: Buffer; storages: Map<string, Uint8Array> } {
  const w = new Bytes();
  const storages = new Map<string, Uint8Array>();
  const keyOf = new Map<HostTensor, string>();
  const storageKey = (t: HostTensor): string => {
    let k = keyOf.get(t);
    if (k === undefined) {
      k = String(keyOf.size);
      keyOf.set(t, k);
      storages.set(k, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
    return k;
  };
  const global = (m: string, n: string): void => { w.u8(0x63); w.buf(Buffer.from(`${m}\n${n}\n`, 'latin1')); };
  const int = (v: number): void => {
    if (v >= 0 && v < 256) w.u8(0x4b, v);
    else if (v >= 0 && v < 65536) { w.u8(0x4d, v & 0xff, v >> 8); }
    else if (v >= -(2 ** 31) && v < 2 ** 31) { w.u8(0x4a); const b = Buffer.alloc(4); b.writeInt32LE(v); w.buf(b); }
    else { w.u8(0x8a, 8); const b = Buffer.alloc(8); b.writeBigInt64LE(BigInt(v)); w.buf(b); }
  };
  const intTuple = (xs: number[]): void => { w.u8(0x28); xs.forEach(int); w.u8(0x74); };
  const emit = (v: PyVal): void => {
    if (v === null) w.u8(0x4e);
    else if (v === true) w.u8(0x88);
    else if (v === false) w.u8(0x89);
    else if (typeof v === 'number') {
      if (Number.isInteger(v)) int(v);
      else { w.u8(0x47); const b = Buffer.alloc(8); b.writeDoubleBE(v); w.buf(b); }
    } else if (typeof v === 'string') w.str(v);
    else if (Array.isArray(v)) { w.u8(0x5d, 0x28); v.forEach(emit); w.u8(0x65); }
    else if (v instanceof Map) { w.u8(0x7d, 0x28); for (const [k, x] of v) { emit(k); emit(x); } w.u8(0x75); }
    else if (v.kind === 'tuple') { w.u8(0x28); v.items.forEach(emit); w.u8(0x74); }
    else if (v.kind === 'odict') {
      global('collections', 'OrderedDict'); w.u8(0x29, 0x52, 0x28);
      for (const [k, x] of v.m) { emit(k); emit(x); }
      w.u8(0x75);
    } else if (v.kind === 'obj') {
      global(v.module, v.name); w.u8(0x29, 0x81);
      emit(v.state); w.u8(0x62);
    } else {
      const base = v.view?.base ?? v.t;
      const shape = v.view?.shape ?? v.t.shape;
      const stride = v.view?.stride ?? shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
      if (v.parameter) global('torch._utils', '_rebuild_parameter');
      global('torch._utils', v.v3 ? '_rebuild_tensor_v3' : '_rebuild_tensor_v2');
      w.u8(0x28); // args
      w.u8(0x28); w.str('storage'); global('torch', v.v3 ? 'UntypedStorage' : STORAGE_NAME[base.dtype]); w.str(storageKey(base)); w.str('cpu');
      int(v.v3 ? base.data.byteLength : base.data.length); w.u8(0x74, 0x51); // pid tuple, BINPERSID
      int(v.view?.offset ?? 0); intTuple(shape); intTuple(stride); w.u8(0x89);
      global('collections', 'OrderedDict'); w.u8(0x29, 0x52);
      if (v.v3) global('torch', base.dtype);
      w.u8(0x74, 0x52);
      if (v.parameter) { w.u8(0x89); global('collections', 'OrderedDict'); w.u8(0x29, 0x52, 0x87, 0x52); }
    }
  };
  w.u8(0x80, 2);
  emit(value);
  w.u8(0x2e);
  return { pkl: w.done(), storages };
}

export interface ZipPiece { pos: number; bytes: Buffer }
export interface ZipOptions {
  /** write zip64 extra fields, a zip64 end-of-central-directory record and locator */
  zip64?: boolean;
  /** leave a hole of this many bytes after the first entry (a sparse file: tests offsets over 4 GiB) */
  gap?: number;
  /** compress entries (method 8) instead of storing them */
  deflate?: boolean;
}

/** A stored (method 0) zip archive as pieces at absolute positions (holes between them stay sparse). */
export function buildZip(entries: Array<{ name: string; data: Uint8Array }>, opts: ZipOptions = {}): { pieces: ZipPiece[]; size: number } {
  const z64 = opts.zip64 === true;
  const pieces: ZipPiece[] = [];
  const central: Buffer[] = [];
  let pos = 0;
  for (const [idx, e] of entries.entries()) {
    if (idx === 1) pos += opts.gap ?? 0;
    const name = Buffer.from(e.name, 'utf8');
    const crc = crc32(e.data);
    const method = opts.deflate ? 8 : 0;
    const comp: Uint8Array = opts.deflate ? deflateRawSync(e.data) : e.data;
    const usize = e.data.length, csize = comp.length;
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0); lh.writeUInt16LE(z64 ? 45 : 20, 4); lh.writeUInt16LE(0, 6); lh.writeUInt16LE(0, 8);
    lh.writeUInt16LE(method, 8); lh.writeUInt16LE(0, 10); lh.writeUInt16LE(0x21, 12); lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(z64 ? 0xffffffff : csize, 18); lh.writeUInt32LE(z64 ? 0xffffffff : usize, 22);
    lh.writeUInt16LE(name.length, 26);
    let lextra = Buffer.alloc(0);
    if (z64) { lextra = Buffer.alloc(20); lextra.writeUInt16LE(1, 0); lextra.writeUInt16LE(16, 2); lextra.writeBigUInt64LE(BigInt(usize), 4); lextra.writeBigUInt64LE(BigInt(csize), 12); }
    lh.writeUInt16LE(lextra.length, 28);
    const local = Buffer.concat([lh, name, lextra, Buffer.from(comp)]);
    pieces.push({ pos, bytes: local });
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0); ch.writeUInt16LE(z64 ? 45 : 20, 4); ch.writeUInt16LE(z64 ? 45 : 20, 6);
    ch.writeUInt16LE(0, 8); ch.writeUInt16LE(method, 10); ch.writeUInt16LE(0, 12); ch.writeUInt16LE(0x21, 14);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(z64 ? 0xffffffff : csize, 20); ch.writeUInt32LE(z64 ? 0xffffffff : usize, 24);
    ch.writeUInt16LE(name.length, 28);
    let cextra = Buffer.alloc(0);
    if (z64) {
      cextra = Buffer.alloc(28); cextra.writeUInt16LE(1, 0); cextra.writeUInt16LE(24, 2);
      cextra.writeBigUInt64LE(BigInt(usize), 4); cextra.writeBigUInt64LE(BigInt(csize), 12); cextra.writeBigUInt64LE(BigInt(pos), 20);
    }
    ch.writeUInt16LE(cextra.length, 30);
    ch.writeUInt32LE(z64 ? 0xffffffff : pos, 42);
    central.push(Buffer.concat([ch, name, cextra]));
    pos += local.length;
  }
  const cd = Buffer.concat(central);
  const cdOffset = pos;
  pieces.push({ pos, bytes: cd });
  pos += cd.length;
  if (z64) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0); rec.writeBigUInt64LE(44n, 4); rec.writeUInt16LE(45, 12); rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(entries.length), 24); rec.writeBigUInt64LE(BigInt(entries.length), 32);
    rec.writeBigUInt64LE(BigInt(cd.length), 40); rec.writeBigUInt64LE(BigInt(cdOffset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0); loc.writeBigUInt64LE(BigInt(pos), 8); loc.writeUInt32LE(1, 16);
    pieces.push({ pos, bytes: Buffer.concat([rec, loc]) });
    pos += 76;
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(z64 ? 0xffff : entries.length, 8); eocd.writeUInt16LE(z64 ? 0xffff : entries.length, 10);
  eocd.writeUInt32LE(z64 ? 0xffffffff : cd.length, 12); eocd.writeUInt32LE(z64 ? 0xffffffff : cdOffset, 16);
  pieces.push({ pos, bytes: eocd });
  pos += 22;
  return { pieces, size: pos };
}

export async function writePieces(path: string, z: { pieces: ZipPiece[]; size: number }): Promise<void> {
  const fh = await open(path, 'w');
  try {
    for (const p of z.pieces) await fh.write(p.bytes, 0, p.bytes.length, p.pos);
    await fh.truncate(z.size);
  } finally {
    await fh.close();
  }
}

/** torch.save(value, path) in the zip format, root folder `root` (torch uses the file stem). */
export async function torchSave(path: string, value: PyVal, opts: ZipOptions & { root?: string } = {}): Promise<void> {
  const root = opts.root ?? 'archive';
  const { pkl, storages } = picklePy(value);
  const entries = [{ name: `${root}/data.pkl`, data: pkl as Uint8Array }];
  for (const [k, b] of storages) entries.push({ name: `${root}/data/${k}`, data: b });
  entries.push({ name: `${root}/version`, data: Buffer.from('3\n') });
  await writePieces(path, buildZip(entries, opts));
}
