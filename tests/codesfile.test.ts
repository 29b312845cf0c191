import { mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { crc32, decodeCodesFile, encodeCodesFile, readCodesFile, writeCodesFile, type CodesMeta } from '../src/codesfile.js';

const META: CodesMeta = { sampleRate: 44100, originalLength: 2646000, channels: 2, frameRate: 25, codebookSize: 16384, muqLayer: 7, nCodebooks: 1 };

function lcg(n: number, mod: number, seed = 1): Int32Array {
  const out = new Int32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; out[i] = s % mod; }
  return out;
}

describe('.mcodes container', () => {
  it('CRC-32 is the zlib one', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it('60 s of music (1501 codes, as sound2code gives for L = 60·48000) fits in under 2,700 bytes', () => {
    const L = 60 * 48000;
    const frames = Math.trunc(L / 48000 * 25) + 1;
    expect(frames).toBe(1501);
    const codes = lcg(frames, 16384);
    codes[0] = 16383; codes[1] = 0;
    const b = encodeCodesFile({ ...META, sampleRate: 48000, originalLength: L, codes });
    expect(b.length).toBe(32 + Math.ceil(1501 * 14 / 8) + 4);
    expect(b.length).toBeLessThan(2700);
    const r = decodeCodesFile(b);
    expect(r).toMatchObject({ sampleRate: 48000, originalLength: L, channels: 2, frameRate: 25, codebookSize: 16384, muqLayer: 7, nCodebooks: 1, frames: 1501 });
    expect(Array.from(r.codes)).toEqual(Array.from(codes));
  });

  it('packs LSB-first at 14 bits with the documented header', () => {
    const b = encodeCodesFile({ ...META, codes: [1, 2, 16383] });
    const dv = new DataView(b.buffer);
    expect(new TextDecoder().decode(b.subarray(0, 4))).toBe('MCDC');
    expect([dv.getUint16(4, true), dv.getUint32(6, true), Number(dv.getBigUint64(10, true)), b[18], b[19], dv.getUint16(20, true), dv.getUint32(22, true), b[26], b[27], dv.getUint32(28, true)])
      .toEqual([1, 44100, 2646000, 2, 1, 25, 16384, 14, 7, 3]);
    // 1 → bits 0..13, 2 → bits 14..27, 16383 → bits 28..41: 42 bits = 6 bytes
    expect(Array.from(b.subarray(32, 38))).toEqual([0x01, 0x80, 0x00, 0xf0, 0xff, 0x03]);
    expect(b.length).toBe(32 + 6 + 4);
    expect(dv.getUint32(38, true)).toBe(crc32(b.subarray(0, 38)));
  });

  it('round-trips other widths, several codebooks, zero frames, huge lengths', () => {
    for (const [size, n, frames] of [[96, 1, 13], [2, 1, 9], [64, 2, 19], [1 << 20, 3, 7], [16384, 1, 0]] as const) {
      const codes = lcg(n * frames, size, size + n);
      const m = { ...META, codebookSize: size, nCodebooks: n, originalLength: 2 ** 40 + 3 };
      const r = decodeCodesFile(encodeCodesFile({ ...m, codes, frames }));
      expect(r.frames).toBe(frames);
      expect(r.originalLength).toBe(2 ** 40 + 3);
      expect(Array.from(r.codes)).toEqual(Array.from(codes));
    }
  });

  it('encoder rejects codes outside the codebook and bad metadata', () => {
    expect(() => encodeCodesFile({ ...META, codes: [0, 16384] })).toThrow(/code 16384 at index 1 is outside \[0, 16384\)/);
    expect(() => encodeCodesFile({ ...META, codes: [-1] })).toThrow(/outside/);
    expect(() => encodeCodesFile({ ...META, channels: 300, codes: [0] })).toThrow(/channel count 300/);
    expect(() => encodeCodesFile({ ...META, codes: [0, 1, 2], frames: 2 })).toThrow(/3 codes for 1 codebook\(s\) × 2 frames/);
  });

  describe('reader rejects damaged files with clear errors', () => {
    const good = encodeCodesFile({ ...META, codes: lcg(100, 16384) });
    it('bad magic', () => {
      const b = good.slice(); b[0] = 0x52;
      expect(() => decodeCodesFile(b, 'x.mcodes')).toThrow('x.mcodes: not a .mcodes file (bad magic "RCDC", expected "MCDC")');
      expect(() => decodeCodesFile(new TextEncoder().encode('RIFF....WAVEfmt '), 'a.wav')).toThrow(/a\.wav: not a \.mcodes file \(bad magic "RIFF"/);
      expect(() => decodeCodesFile(new Uint8Array(3), 'e')).toThrow('e: not a .mcodes file (only 3 bytes)');
    });
    it('unknown version', () => {
      const b = good.slice(); b[4] = 2;
      expect(() => decodeCodesFile(b, 'v.mcodes')).toThrow('v.mcodes: unknown .mcodes format version 2 (this reader supports version 1)');
    });
    it('truncated payload / header, trailing bytes', () => {
      expect(() => decodeCodesFile(good.subarray(0, good.length - 10), 't.mcodes')).toThrow(`t.mcodes: truncated payload: ${good.length - 10} bytes, expected ${good.length} for 100 frames of 14-bit codes`);
      expect(() => decodeCodesFile(good.subarray(0, 20), 't.mcodes')).toThrow(/t\.mcodes: truncated header \(20 bytes/);
      const longer = new Uint8Array(good.length + 2); longer.set(good);
      expect(() => decodeCodesFile(longer, 'l.mcodes')).toThrow('l.mcodes: 2 unexpected trailing bytes after the checksum');
    });
    it('checksum mismatch (payload bit flip, header change, checksum damage)', () => {
      for (const at of [40, 6, good.length - 1]) {
        const b = good.slice(); b[at]! ^= 0x10;
        expect(() => decodeCodesFile(b, 'c.mcodes')).toThrow(/c\.mcodes: checksum mismatch \(stored CRC-32 [0-9a-f]{8}, computed [0-9a-f]{8}\): the file is corrupted/);
      }
    });
  });

  it('atomic write and read back from disk; missing file error', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'mcodes-'));
    const p = join(tmp, 'a.mcodes');
    const codes = lcg(1501, 16384, 7);
    await writeCodesFile(p, { ...META, codes });
    expect(readdirSync(tmp)).toEqual(['a.mcodes']);
    expect(Array.from((await readCodesFile(p)).codes)).toEqual(Array.from(codes));
    const bytes = readFileSync(p); bytes[100]! ^= 1; writeFileSync(p, bytes);
    await expect(readCodesFile(p)).rejects.toThrow(/a\.mcodes: checksum mismatch/);
    await expect(readCodesFile(join(tmp, 'none.mcodes'))).rejects.toThrow(/none\.mcodes: cannot read \(ENOENT\)/);
    await expect(writeCodesFile(join(tmp, 'nodir', 'b.mcodes'), { ...META, codes })).rejects.toThrow(/b\.mcodes: cannot write/);
    expect(existsSync(join(tmp, 'nodir'))).toBe(false);
  });
});
