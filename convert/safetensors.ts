/**
 * safetensors: streaming reader and writer.
 *
 * Format: u64 little-endian header length N, N bytes of JSON header
 * ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {str: str}}), then the data block.
 * The reader validates the header (known dtypes, byte sizes that match the shapes, offsets inside the file,
 * no overlaps) and reads one tensor at a time through a file handle, so files over 4 GiB work and memory is
 * bounded by the largest tensor.
 */
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { bytesPerElement, numel, shapeStr, type DType, type HostData, type HostTensor } from '../src/hosttensor.js';

const ST_TO_DTYPE: Record<string, DType> = {
  F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64',
  I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};
const DTYPE_TO_ST: Record<DType, string> = Object.fromEntries(
  Object.entries(ST_TO_DTYPE).map(([k, v]) => [v, k]),
) as Record<DType, string>;

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** absolute byte offset in the file */
  offset: number;
  byteLength: number;
}

/** Typed array view over a byte buffer (copied so alignment is always right). */
export function typedFromBytes(dtype: DType, bytes: Uint8Array): HostData {
  const buf = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  const ab = buf.buffer as ArrayBuffer;
  const off = buf.byteOffset;
  const n = bytes.byteLength / bytesPerElement(dtype);
  switch (dtype) {
    case 'float32': return new Float32Array(ab, off, n);
    case 'float64': return new Float64Array(ab, off, n);
    case 'int64': return new BigInt64Array(ab, off, n);
    case 'int32': return new Int32Array(ab, off, n);
    case 'int16': return new Int16Array(ab, off, n);
    case 'int8': return new Int8Array(ab, off, n);
    case 'float16': case 'bfloat16': return new Uint16Array(ab, off, n);
    case 'uint8': case 'bool': return new Uint8Array(ab, off, n);
  }
}

export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private fh: FileHandle | null,
    readonly tensors: Map<string, TensorInfo>,
    readonly metadata: Record<string, string>,
  ) {}

  static async open(path: string): Promise<SafetensorsFile> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw new Error(`${path}: cannot open safetensors file (${(e as Error).message})`);
    }
    try {
      const size = (await fh.stat()).size;
      if (size < 8) throw new Error('file is shorter than the 8-byte header length');
      const lenBuf = Buffer.alloc(8);
      await fh.read(lenBuf, 0, 8, 0);
      const hlen = Number(lenBuf.readBigUInt64LE(0));
      if (hlen <= 0 || hlen > 100_000_000 || 8 + hlen > size) {
        throw new Error(`header length ${hlen} is not plausible for a file of ${size} bytes (not a safetensors file?)`);
      }
      const hbuf = Buffer.alloc(hlen);
      await fh.read(hbuf, 0, hlen, 8);
      let header: Record<string, unknown>;
      try {
        header = JSON.parse(hbuf.toString('utf8')) as Record<string, unknown>;
      } catch {
        throw new Error('header is not valid JSON (not a safetensors file?)');
      }
      const dataStart = 8 + hlen;
      const tensors = new Map<string, TensorInfo>();
      let metadata: Record<string, string> = {};
      const spans: Array<[number, number, string]> = [];
      for (const [name, v] of Object.entries(header)) {
        if (name === '__metadata__') { metadata = (v ?? {}) as Record<string, string>; continue; }
        const e = v as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
        const dtype = e.dtype !== undefined ? ST_TO_DTYPE[e.dtype] : undefined;
        if (!dtype) throw new Error(`tensor "${name}": unknown dtype ${JSON.stringify(e.dtype)}`);
        if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isInteger(d) || d < 0)) {
          throw new Error(`tensor "${name}": bad shape ${JSON.stringify(e.shape)}`);
        }
        const [b, en] = e.data_offsets ?? [NaN, NaN];
        if (!Number.isInteger(b) || !Number.isInteger(en) || b < 0 || en < b || dataStart + en > size) {
          throw new Error(`tensor "${name}": data offsets ${JSON.stringify(e.data_offsets)} lie outside the file`);
        }
        const want = numel(e.shape) * bytesPerElement(dtype);
        if (en - b !== want) {
          throw new Error(`tensor "${name}": ${en - b} bytes for ${dtype} ${shapeStr(e.shape)} (expected ${want})`);
        }
        tensors.set(name, { name, dtype, shape: e.shape, offset: dataStart + b, byteLength: en - b });
        if (en > b) spans.push([b, en, name]);
      }
      spans.sort((x, y) => x[0] - y[0]);
      for (let i = 1; i < spans.length; i++) {
        if (spans[i]![0] < spans[i - 1]![1]) {
          throw new Error(`tensors "${spans[i - 1]![2]}" and "${spans[i]![2]}" overlap`);
        }
      }
      return new SafetensorsFile(path, fh, tensors, metadata);
    } catch (e) {
      await fh.close();
      throw new Error(`${path}: ${(e as Error).message}`);
    }
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`${this.path}: no tensor named "${name}"`);
    return t;
  }

  /** Read one tensor's bytes (any size; a tensor over 2 GiB is read in pieces). */
  async read(name: string): Promise<HostTensor> {
    if (!this.fh) throw new Error(`${this.path}: file is closed`);
    const t = this.info(name);
    const bytes = new Uint8Array(t.byteLength);
    const CHUNK = 1 << 30;
    for (let done = 0; done < t.byteLength; ) {
      const n = Math.min(CHUNK, t.byteLength - done);
      const { bytesRead } = await this.fh.read(bytes, done, n, t.offset + done);
      if (bytesRead <= 0) throw new Error(`${this.path}: unexpected end of file reading "${name}"`);
      done += bytesRead;
    }
    return { dtype: t.dtype, shape: [...t.shape], data: typedFromBytes(t.dtype, bytes) };
  }

  async readAll(): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const n of this.names()) out.set(n, await this.read(n));
    return out;
  }

  async close(): Promise<void> {
    if (this.fh) { await this.fh.close(); this.fh = null; }
  }
}

export async function readSafetensors(path: string): Promise<Map<string, HostTensor>> {
  const f = await SafetensorsFile.open(path);
  try {
    return await f.readAll();
  } finally {
    await f.close();
  }
}

export interface TensorSource {
  name: string;
  dtype: DType;
  shape: number[];
  /** produces the tensor's data when the writer reaches it (so only one tensor is in memory at a time) */
  load: () => Promise<HostData> | HostData;
}

/**
 * Streaming safetensors writer: header first (from the declared dtypes/shapes), then each tensor's data
 * fetched and written one at a time. Writes to `<path>.tmp-<pid>` then renames, so a failed write never
 * leaves a partial file under the final name.
 */
export async function writeSafetensors(
  path: string,
  sources: TensorSource[],
  metadata: Record<string, string> = {},
  onProgress?: (done: number, total: number, name: string) => void,
): Promise<void> {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  for (const s of sources) {
    const nbytes = numel(s.shape) * bytesPerElement(s.dtype);
    header[s.name] = { dtype: DTYPE_TO_ST[s.dtype], shape: s.shape, data_offsets: [off, off + nbytes] };
    off += nbytes;
  }
  let hjson = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (hjson.length % 8)) % 8; // keep the data block 8-byte aligned
  if (pad) hjson = Buffer.concat([hjson, Buffer.alloc(pad, 0x20)]);
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    const lenBuf = Buffer.alloc(8);
    lenBuf.writeBigUInt64LE(BigInt(hjson.length));
    let pos = 0;
    await fh.write(lenBuf, 0, 8, pos); pos += 8;
    await fh.write(hjson, 0, hjson.length, pos); pos += hjson.length;
    let i = 0;
    for (const s of sources) {
      const data = await s.load();
      const want = numel(s.shape) * bytesPerElement(s.dtype);
      if (data.byteLength !== want) {
        throw new Error(`tensor "${s.name}": got ${data.byteLength} bytes for ${s.dtype} ${shapeStr(s.shape)} (expected ${want})`);
      }
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      for (let done = 0; done < bytes.length; ) {
        const { bytesWritten } = await fh.write(bytes, done, Math.min(1 << 30, bytes.length - done), pos);
        done += bytesWritten; pos += bytesWritten;
      }
      onProgress?.(++i, sources.length, s.name);
    }
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}
