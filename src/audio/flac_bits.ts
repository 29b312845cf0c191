/**
 * Bit-level pieces of the FLAC encoder (src/audio/flac_encode.ts): an MSB-first bit writer with Rice codes, and the
 * two checksums of a FLAC frame (RFC 9639 §9.1.8 CRC-8, poly x^8 + x^2 + x + 1; §9.3 CRC-16, poly 0x8005; both
 * initialised to 0, unreflected).
 */

/** Appends bits most-significant first; bytes are complete once `align()` pads the last one with zeros. */
export class BitWriter {
  private buf = new Uint8Array(1 << 16);
  private len = 0;
  private acc = 0; // < 8 pending bits
  private nacc = 0;

  private grow(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let n = this.buf.length * 2;
    while (n < this.len + extra) n *= 2;
    const b = new Uint8Array(n);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }

  /** the low `n` bits of `v` (v ≥ 0, or a two's-complement value for a signed field), any n ≤ 53 */
  bits(v: number, n: number): void {
    while (n > 24) { // keep acc << n within 31 bits
      n -= 24;
      this.bits(Math.floor(v / 2 ** n) & 0xffffff, 24);
    }
    if (n === 0) return;
    this.grow(4);
    this.acc = (this.acc << n) | (v & ((1 << n) - 1));
    this.nacc += n;
    while (this.nacc >= 8) {
      this.nacc -= 8;
      this.buf[this.len++] = (this.acc >>> this.nacc) & 0xff;
    }
    this.acc &= (1 << this.nacc) - 1;
  }

  /** `q` zeros then a one (RFC 9639 unary: the quotient of a Rice code) */
  unary(q: number): void {
    while (q >= 24) { this.bits(0, 24); q -= 24; }
    this.bits(1, q + 1);
  }

  /** residuals[from, to) Rice-coded with parameter k: folded (zigzag) value u = 2v or −2v − 1, then u >> k in
   *  unary and the low k bits */
  rice(res: Int32Array, from: number, to: number, k: number): void {
    const div = 2 ** k;
    for (let i = from; i < to; i++) {
      const v = res[i]!;
      const u = v >= 0 ? 2 * v : -2 * v - 1;
      const q = Math.floor(u / div);
      this.unary(q);
      this.bits(u - q * div, k);
    }
  }

  align(): void {
    if (this.nacc) this.bits(0, 8 - this.nacc);
  }

  get byteLength(): number { return this.len; }

  reset(): void { this.len = 0; this.acc = 0; this.nacc = 0; }

  /** the bytes written so far (call align() first); a view, valid until the next write */
  bytes(): Uint8Array { return this.buf.subarray(0, this.len); }
}

const CRC8 = new Uint8Array(256);
const CRC16 = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let j = 0; j < 8; j++) c = c & 0x80 ? ((c << 1) ^ 0x07) & 0xff : (c << 1) & 0xff;
  CRC8[i] = c;
  let d = i << 8;
  for (let j = 0; j < 8; j++) d = d & 0x8000 ? ((d << 1) ^ 0x8005) & 0xffff : (d << 1) & 0xffff;
  CRC16[i] = d;
}

export function crc8(b: Uint8Array): number {
  let c = 0;
  for (let i = 0; i < b.length; i++) c = CRC8[c ^ b[i]!]!;
  return c;
}

export function crc16(b: Uint8Array): number {
  let c = 0;
  for (let i = 0; i < b.length; i++) c = ((c << 8) & 0xffff) ^ CRC16[(c >> 8) ^ b[i]!]!;
  return c;
}
