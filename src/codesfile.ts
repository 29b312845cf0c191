/**
 * The .mcodes container: MuCodec codes of one piece of audio, bit-packed, with a CRC-32.
 *
 * Layout (little endian), format version 1:
 *
 * | offset | size | field                                                                  |
 * |-------:|-----:|------------------------------------------------------------------------|
 * |      0 |    4 | magic "MCDC"                                                           |
 * |      4 |    2 | format version (1)                                                     |
 * |      6 |    4 | sample rate of the original audio (Hz)                                 |
 * |     10 |    8 | original length in samples per channel, at that rate (u64)             |
 * |     18 |    1 | channel count of the original audio                                    |
 * |     19 |    1 | number of codebooks N (MuCodec: 1)                                     |
 * |     20 |    2 | frame rate (codes per second; MuCodec: 25)                             |
 * |     22 |    4 | codebook size (MuCodec: 16384)                                         |
 * |     26 |    1 | bits per code = ceil(log2(codebook size)) (MuCodec: 14)                |
 * |     27 |    1 | MuQ layer (MuCodec's layer_num: 7 = hidden state index 6)              |
 * |     28 |    4 | frame count T                                                          |
 * |     32 |    P | codes (N, T) row-major, each `bits` wide, packed LSB-first;            |
 * |        |      | P = ceil(N·T·bits / 8), unused high bits of the last byte are zero     |
 * |   32+P |    4 | CRC-32 (IEEE 802.3, as zlib) of bytes [0, 32+P)                        |
 *
 * 60 s of music = 1501 codes → 32 + 2627 + 4 = 2663 bytes.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from './atomic.js';

export const MCODES_MAGIC = 'MCDC';
export const MCODES_VERSION = 1;
export const MCODES_HEADER_BYTES = 32;

export interface CodesMeta {
  /** sample rate of the original audio (Hz) */
  sampleRate: number;
  /** original length in samples per channel, at `sampleRate` */
  originalLength: number;
  /** channel count of the original audio */
  channels: number;
  /** codes per second (25) */
  frameRate: number;
  /** codebook size (16384) */
  codebookSize: number;
  /** MuCodec layer_num (7: MuQ hidden state index 6) */
  muqLayer: number;
  /** number of codebooks (1) */
  nCodebooks: number;
}

export interface CodesFile extends CodesMeta {
  /** (nCodebooks, frames) row-major */
  codes: Int32Array;
  frames: number;
}

export class CodesFileError extends Error {}

let crcTable: Uint32Array | null = null;

/** CRC-32 (reflected polynomial 0xEDB88320, init and final xor 0xFFFFFFFF), the zlib / PNG / gzip one. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function bitsForCodebook(size: number): number {
  if (!(Number.isInteger(size) && size >= 2 && size <= 2 ** 32)) throw new CodesFileError(`invalid codebook size ${size}`);
  return Math.ceil(Math.log2(size));
}

/**
 * What a header must hold whatever the model: a sample rate ≥ 1 Hz, 1 (mono) or 2 (stereo) channels, at least one
 * codebook, a frame rate ≥ 1 and a MuQ layer ≥ 1 (layer_num counts from 1). Returns the first problem, or null.
 * (Whether the model can decode them — frame rate, codebook, layer — is MuCodec.checkCodesMeta's question.)
 */
export function headerProblem(m: CodesMeta): string | null {
  if (!(m.sampleRate >= 1)) return `sample rate ${m.sampleRate} is invalid (the original audio's rate, at least 1 Hz)`;
  if (!(m.channels === 1 || m.channels === 2)) return `channel count ${m.channels} is invalid (the original audio is mono (1) or stereo (2))`;
  if (!(m.nCodebooks >= 1)) return `codebook count ${m.nCodebooks} is invalid (at least 1)`;
  if (!(m.frameRate >= 1)) return `frame rate ${m.frameRate} is invalid (codes per second, at least 1)`;
  if (!(m.muqLayer >= 1)) return `MuQ layer ${m.muqLayer} is invalid (layer_num counts from 1)`;
  return null;
}

function checkMeta(m: CodesMeta, frames: number, codes: ArrayLike<number>): number {
  const u = (v: number, max: number, what: string) => {
    if (!(Number.isInteger(v) && v >= 0 && v <= max)) throw new CodesFileError(`.mcodes: ${what} ${v} is out of range [0, ${max}]`);
  };
  u(m.sampleRate, 0xffffffff, 'sample rate');
  u(m.originalLength, Number.MAX_SAFE_INTEGER, 'original length');
  u(m.channels, 255, 'channel count');
  u(m.nCodebooks, 255, 'codebook count');
  u(m.frameRate, 0xffff, 'frame rate');
  u(m.muqLayer, 255, 'MuQ layer');
  u(frames, 0xffffffff, 'frame count');
  const problem = headerProblem(m);
  if (problem) throw new CodesFileError(`.mcodes: ${problem}`);
  const bits = bitsForCodebook(m.codebookSize);
  if (m.codebookSize > 0xffffffff) throw new CodesFileError(`.mcodes: codebook size ${m.codebookSize} does not fit the header`);
  if (codes.length !== m.nCodebooks * frames) throw new CodesFileError(`.mcodes: ${codes.length} codes for ${m.nCodebooks} codebook(s) × ${frames} frames`);
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i]!;
    if (!(Number.isInteger(c) && c >= 0 && c < m.codebookSize)) throw new CodesFileError(`.mcodes: code ${c} at index ${i} is outside [0, ${m.codebookSize})`);
  }
  return bits;
}

/** Serialise codes + metadata to .mcodes bytes. */
export function encodeCodesFile(f: CodesMeta & { codes: ArrayLike<number>; frames?: number }): Uint8Array {
  const frames = f.frames ?? (f.nCodebooks ? f.codes.length / f.nCodebooks : 0);
  const bits = checkMeta(f, frames, f.codes);
  const payload = Math.ceil((f.codes.length * bits) / 8);
  const out = new Uint8Array(MCODES_HEADER_BYTES + payload + 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) out[i] = MCODES_MAGIC.charCodeAt(i);
  dv.setUint16(4, MCODES_VERSION, true);
  dv.setUint32(6, f.sampleRate, true);
  dv.setBigUint64(10, BigInt(f.originalLength), true);
  dv.setUint8(18, f.channels);
  dv.setUint8(19, f.nCodebooks);
  dv.setUint16(20, f.frameRate, true);
  dv.setUint32(22, f.codebookSize, true);
  dv.setUint8(26, bits);
  dv.setUint8(27, f.muqLayer);
  dv.setUint32(28, frames, true);
  // LSB-first bit packing: code i occupies bits [i·bits, (i+1)·bits) of the payload
  let acc = 0, nacc = 0, pos = MCODES_HEADER_BYTES;
  for (let i = 0; i < f.codes.length; i++) {
    let v = f.codes[i]!, left = bits;
    while (left > 0) {
      const take = Math.min(left, 8 - nacc);
      acc |= (v & ((1 << take) - 1)) << nacc;
      v = Math.floor(v / 2 ** take);
      left -= take; nacc += take;
      if (nacc === 8) { out[pos++] = acc; acc = 0; nacc = 0; }
    }
  }
  if (nacc) out[pos++] = acc;
  dv.setUint32(pos, crc32(out.subarray(0, pos)), true);
  return out;
}

/** Parse and verify .mcodes bytes; `name` is used in error messages. */
export function decodeCodesFile(bytes: Uint8Array, name = '.mcodes data'): CodesFile {
  const fail = (m: string): never => { throw new CodesFileError(`${name}: ${m}`); };
  if (bytes.length < 6) fail(`not a .mcodes file (only ${bytes.length} bytes)`);
  const magic = String.fromCharCode(bytes[0]!, bytes[1]!, bytes[2]!, bytes[3]!);
  if (magic !== MCODES_MAGIC) fail(`not a .mcodes file (bad magic ${JSON.stringify(magic)}, expected "${MCODES_MAGIC}")`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint16(4, true);
  if (version !== MCODES_VERSION) fail(`unknown .mcodes format version ${version} (this reader supports version ${MCODES_VERSION})`);
  if (bytes.length < MCODES_HEADER_BYTES + 4) fail(`truncated header (${bytes.length} bytes, a header and checksum need ${MCODES_HEADER_BYTES + 4})`);
  const nCodebooks = dv.getUint8(19);
  const codebookSize = dv.getUint32(22, true);
  const bits = dv.getUint8(26);
  const frames = dv.getUint32(28, true);
  const payload = Math.ceil((nCodebooks * frames * bits) / 8);
  const total = MCODES_HEADER_BYTES + payload + 4;
  if (bytes.length < total) fail(`truncated payload: ${bytes.length} bytes, expected ${total} for ${frames} frames of ${bits}-bit codes`);
  if (bytes.length > total) fail(`${bytes.length - total} unexpected trailing bytes after the checksum`);
  const stored = dv.getUint32(total - 4, true);
  const actual = crc32(bytes.subarray(0, total - 4));
  if (stored !== actual) fail(`checksum mismatch (stored CRC-32 ${stored.toString(16).padStart(8, '0')}, computed ${actual.toString(16).padStart(8, '0')}): the file is corrupted`);
  if (codebookSize < 2) fail(`invalid codebook size ${codebookSize}`);
  if (bits !== Math.ceil(Math.log2(codebookSize))) fail(`header inconsistent: ${bits} bits per code for a codebook of ${codebookSize}`);
  const len = dv.getBigUint64(10, true);
  if (len > BigInt(Number.MAX_SAFE_INTEGER)) fail(`original length ${len} is too large`);
  const meta: CodesMeta = {
    sampleRate: dv.getUint32(6, true), originalLength: Number(len), channels: dv.getUint8(18), nCodebooks,
    frameRate: dv.getUint16(20, true), codebookSize, muqLayer: dv.getUint8(27),
  };
  const problem = headerProblem(meta);
  if (problem) fail(`header: ${problem}`);
  const codes = new Int32Array(nCodebooks * frames);
  let pos = MCODES_HEADER_BYTES, acc = 0, nacc = 0;
  for (let i = 0; i < codes.length; i++) {
    let v = 0, got = 0;
    while (got < bits) {
      if (nacc === 0) { acc = bytes[pos++]!; nacc = 8; }
      const take = Math.min(bits - got, nacc);
      v += (acc & ((1 << take) - 1)) * 2 ** got;
      acc >>>= take; nacc -= take; got += take;
    }
    if (v >= codebookSize) fail(`code ${v} at index ${i} is outside [0, ${codebookSize})`);
    codes[i] = v;
  }
  return { ...meta, frames, codes };
}

export async function writeCodesFile(path: string, f: CodesMeta & { codes: ArrayLike<number>; frames?: number }): Promise<void> {
  await writeFileAtomic(path, encodeCodesFile(f));
}

export async function readCodesFile(path: string): Promise<CodesFile> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new CodesFileError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return decodeCodesFile(bytes, path);
}
