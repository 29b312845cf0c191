/**
 * Streaming ZIP reader over a file handle (what torch.save >= 1.6 writes).
 *
 * Only the central directory is read up front; entry data is read on demand, optionally a byte range of an
 * entry, so multi-gigabyte archives (over 4 GiB: zip64) work with memory bounded by what is requested.
 * Supports: zip64 end-of-central-directory locator/record and zip64 extra fields (sizes, offsets), stored
 * entries (method 0, what torch.save writes; byte ranges are read straight from the file) and deflated entries
 * (method 8, inflated whole with zlib.inflateRawSync, then sliced). Other methods, encryption and multi-disk
 * archives are refused with a message naming the file.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { inflateRawSync } from 'node:zlib';

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflated */
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  /** uncompressed size in bytes */
  size: number;
  localHeaderOffset: number;
}

/** Read exactly `length` bytes at `position` (in <= 1 GiB pieces); throws on a short read. */
export async function readExact(fh: FileHandle, position: number, length: number, what: string): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  const CHUNK = 1 << 30;
  for (let done = 0; done < length; ) {
    const n = Math.min(CHUNK, length - done);
    const { bytesRead } = await fh.read(out, done, n, position + done);
    if (bytesRead <= 0) throw new Error(`unexpected end of file reading ${what} (file truncated?)`);
    done += bytesRead;
  }
  return out;
}

function u64(dv: DataView, off: number): number {
  const v = dv.getBigUint64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`64-bit value ${v} is too large`);
  return Number(v);
}

export class ZipReader {
  private dataOffsets = new Map<string, number>();
  /** bytes read from the file by read()/dataOffset() since open (the central directory not counted) */
  bytesRead = 0;

  private constructor(
    readonly path: string,
    private fh: FileHandle | null,
    readonly fileSize: number,
    readonly entries: Map<string, ZipEntry>,
    /** true when the file handle is owned (opened by ZipReader.open) and closed by close() */
    private readonly ownsHandle: boolean,
  ) {}

  /** True when the file starts with a local file header ("PK\x03\x04") or is an empty archive. */
  static async looksLikeZip(fh: FileHandle): Promise<boolean> {
    const b = new Uint8Array(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    if (bytesRead < 4) return false;
    const sig = new DataView(b.buffer).getUint32(0, true);
    return sig === SIG_LOCAL || sig === SIG_EOCD;
  }

  static async open(path: string): Promise<ZipReader> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw new Error(`${path}: cannot open (${(e as Error).message})`);
    }
    try {
      return await ZipReader.fromHandle(fh, path, true);
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
  }

  /** Read the central directory of an already open file. Errors are prefixed with `path`. */
  static async fromHandle(fh: FileHandle, path: string, ownsHandle = false): Promise<ZipReader> {
    try {
      const size = (await fh.stat()).size;
      if (size < 22) throw new Error(`not a zip archive (${size} bytes is too short for an end-of-central-directory record)`);
      // End of central directory: 22 bytes + up to 65535 bytes of comment, at the end of the file.
      const tailLen = Math.min(size, 22 + 65535);
      const tailPos = size - tailLen;
      const tail = await readExact(fh, tailPos, tailLen, 'the end-of-central-directory record');
      const tdv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
      let eocd = -1;
      for (let i = tailLen - 22; i >= 0; i--) {
        if (tdv.getUint32(i, true) === SIG_EOCD && i + 22 + tdv.getUint16(i + 20, true) <= tailLen) { eocd = i; break; }
      }
      if (eocd < 0) {
        const head = await readExact(fh, 0, 4, 'the file signature');
        const isLocal = new DataView(head.buffer).getUint32(0, true) === SIG_LOCAL;
        throw new Error(isLocal
          ? 'zip archive without an end-of-central-directory record (file truncated?)'
          : 'not a zip archive (no end-of-central-directory record)');
      }
      const diskNo = tdv.getUint16(eocd + 4, true);
      const cdDisk = tdv.getUint16(eocd + 6, true);
      let count = tdv.getUint16(eocd + 10, true);
      let cdSize = tdv.getUint32(eocd + 12, true);
      let cdOffset = tdv.getUint32(eocd + 16, true);
      // zip64: a locator sits right before the EOCD record.
      const locPos = eocd - 20;
      if (locPos >= 0 && tdv.getUint32(locPos, true) === SIG_ZIP64_LOCATOR) {
        const z64Off = u64(tdv, locPos + 8);
        if (z64Off + 56 > size) throw new Error(`zip64 end-of-central-directory record offset ${z64Off} lies outside the file (truncated?)`);
        const rec = await readExact(fh, z64Off, 56, 'the zip64 end-of-central-directory record');
        const rdv = new DataView(rec.buffer);
        if (rdv.getUint32(0, true) !== SIG_ZIP64_EOCD) throw new Error('bad zip64 end-of-central-directory record signature');
        count = u64(rdv, 32);
        cdSize = u64(rdv, 40);
        cdOffset = u64(rdv, 48);
      } else if (diskNo !== 0 || cdDisk !== 0) {
        throw new Error('multi-disk zip archives are not supported');
      } else if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
        throw new Error('zip64 values without a zip64 end-of-central-directory locator');
      }
      if (cdOffset + cdSize > size) {
        throw new Error(`central directory (offset ${cdOffset}, ${cdSize} bytes) lies outside the file of ${size} bytes (truncated?)`);
      }
      const cd = await readExact(fh, cdOffset, cdSize, 'the central directory');
      const dv = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
      const dec = new TextDecoder('utf-8');
      const entries = new Map<string, ZipEntry>();
      let p = 0;
      for (let i = 0; i < count; i++) {
        if (p + 46 > cdSize || dv.getUint32(p, true) !== SIG_CENTRAL) {
          throw new Error(`corrupt central directory at entry ${i} of ${count}`);
        }
        const flags = dv.getUint16(p + 8, true);
        const method = dv.getUint16(p + 10, true);
        const crc32 = dv.getUint32(p + 16, true);
        let compressedSize = dv.getUint32(p + 20, true);
        let usize = dv.getUint32(p + 24, true);
        const nameLen = dv.getUint16(p + 28, true);
        const extraLen = dv.getUint16(p + 30, true);
        const commentLen = dv.getUint16(p + 32, true);
        let localHeaderOffset = dv.getUint32(p + 42, true);
        if (p + 46 + nameLen + extraLen + commentLen > cdSize) throw new Error(`corrupt central directory at entry ${i}`);
        const name = dec.decode(cd.subarray(p + 46, p + 46 + nameLen));
        // zip64 extended information extra field (id 1): only the fields whose 32-bit value is 0xffffffff, in order.
        let e = p + 46 + nameLen;
        const eEnd = e + extraLen;
        while (e + 4 <= eEnd) {
          const id = dv.getUint16(e, true);
          const len = dv.getUint16(e + 2, true);
          if (id === 0x0001) {
            let q = e + 4;
            const need = (cond: boolean): number | undefined => {
              if (!cond) return undefined;
              if (q + 8 > e + 4 + len) throw new Error(`entry "${name}": zip64 extra field too short`);
              const v = u64(dv, q); q += 8; return v;
            };
            usize = need(usize === 0xffffffff) ?? usize;
            compressedSize = need(compressedSize === 0xffffffff) ?? compressedSize;
            localHeaderOffset = need(localHeaderOffset === 0xffffffff) ?? localHeaderOffset;
          }
          e += 4 + len;
        }
        entries.set(name, { name, method, flags, crc32, compressedSize, size: usize, localHeaderOffset });
        p += 46 + nameLen + extraLen + commentLen;
      }
      return new ZipReader(path, fh, size, entries, ownsHandle);
    } catch (e) {
      throw new Error(`${path}: ${(e as Error).message}`);
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  entry(name: string): ZipEntry {
    const e = this.entries.get(name);
    if (!e) throw new Error(`${this.path}: no zip entry named "${name}"`);
    return e;
  }

  private handle(): FileHandle {
    if (!this.fh) throw new Error(`${this.path}: archive is closed`);
    return this.fh;
  }

  /** Absolute file offset of an entry's (possibly compressed) data, from its local header. */
  async dataOffset(name: string): Promise<number> {
    const cached = this.dataOffsets.get(name);
    if (cached !== undefined) return cached;
    const e = this.entry(name);
    if (e.localHeaderOffset + 30 > this.fileSize) throw new Error(`${this.path}: local header of "${name}" lies outside the file (truncated?)`);
    const h = await readExact(this.handle(), e.localHeaderOffset, 30, `the local header of "${name}"`);
    this.bytesRead += 30;
    const dv = new DataView(h.buffer);
    if (dv.getUint32(0, true) !== SIG_LOCAL) throw new Error(`${this.path}: bad local header signature for "${name}"`);
    const off = e.localHeaderOffset + 30 + dv.getUint16(26, true) + dv.getUint16(28, true);
    if (off + e.compressedSize > this.fileSize) {
      throw new Error(`${this.path}: data of "${name}" (${e.compressedSize} bytes at ${off}) runs past the end of the file (truncated?)`);
    }
    this.dataOffsets.set(name, off);
    return off;
  }

  /**
   * Bytes [start, start + length) of an entry's uncompressed data (default: all of it).
   * Stored entries read only that range from the file; deflated entries are inflated whole first.
   */
  async read(name: string, start = 0, length?: number): Promise<Uint8Array> {
    const e = this.entry(name);
    const len = length ?? e.size - start;
    if (start < 0 || len < 0 || start + len > e.size) {
      throw new Error(`${this.path}: byte range [${start}, ${start + len}) lies outside entry "${name}" of ${e.size} bytes`);
    }
    if (e.flags & 1) throw new Error(`${this.path}: entry "${name}" is encrypted`);
    const off = await this.dataOffset(name);
    if (e.method === 0) {
      if (e.compressedSize !== e.size) throw new Error(`${this.path}: stored entry "${name}" has compressed size ${e.compressedSize} != size ${e.size}`);
      this.bytesRead += len;
      return readExact(this.handle(), off + start, len, `"${name}"`);
    }
    if (e.method === 8) {
      if (e.compressedSize > 2 ** 31 - 1) throw new Error(`${this.path}: deflated entry "${name}" is too large (${e.compressedSize} bytes) to inflate in memory`);
      const comp = await readExact(this.handle(), off, e.compressedSize, `"${name}"`);
      this.bytesRead += e.compressedSize;
      const raw = inflateRawSync(comp);
      if (raw.length !== e.size) throw new Error(`${this.path}: entry "${name}" inflated to ${raw.length} bytes, expected ${e.size}`);
      return new Uint8Array(raw.buffer, raw.byteOffset + start, len);
    }
    throw new Error(`${this.path}: entry "${name}" uses unsupported compression method ${e.method} (only stored and deflate are supported)`);
  }

  async close(): Promise<void> {
    if (this.fh && this.ownsHandle) await this.fh.close();
    this.fh = null;
  }
}
