/**
 * The one source of every random draw (standard normal) in the codec.
 *
 *  - seeded: a reproducible stream (xoshiro128** + Box-Muller in float64, rounded to float32), so a user's
 *    `seed` gives identical output run to run.
 *  - replay: hands out recorded tensors (the fixtures' `noise.*`, in call order) and checks each draw's shape,
 *    so a test reproduces the reference's draws exactly.
 *
 * Draws are plain Float32Arrays (host memory); callers turn them into tensors.
 */
import { numel, shapeStr, toFloat32, type HostTensor } from './hosttensor.js';

export interface NoiseSource {
  /** N(0, 1) draw of the given shape, row-major float32. `what` names the draw for error messages. */
  randn(shape: readonly number[], what?: string): Float32Array;
}

export class SeededNoise implements NoiseSource {
  private s: Uint32Array;
  private spare: number | null = null;

  constructor(readonly seed: number) {
    // splitmix32 to spread the seed over the 128-bit state
    let x = (seed >>> 0) ^ 0x9e3779b9;
    this.s = new Uint32Array(4);
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.s.every((v) => v === 0)) this.s[0] = 1;
  }

  private nextU32(): number {
    const s = this.s;
    const result = Math.imul(((Math.imul(s[1]!, 5) << 7) | (Math.imul(s[1]!, 5) >>> 25)) >>> 0, 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!; s[3]! ^= s[1]!; s[1]! ^= s[2]!; s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = ((s[3]! << 11) | (s[3]! >>> 21)) >>> 0;
    return result;
  }

  /** uniform in (0, 1) with 53 random bits */
  private uniform(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo + 0.5) / 9007199254740992;
  }

  private gauss(): number {
    if (this.spare !== null) { const v = this.spare; this.spare = null; return v; }
    const u1 = this.uniform();
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  randn(shape: readonly number[]): Float32Array {
    const out = new Float32Array(numel(shape));
    for (let i = 0; i < out.length; i++) out[i] = this.gauss();
    return out;
  }
}

export class ReplayNoise implements NoiseSource {
  private i = 0;
  constructor(private readonly draws: HostTensor[], private readonly label = 'recorded noise') {}

  randn(shape: readonly number[], what = 'draw'): Float32Array {
    const d = this.draws[this.i];
    if (!d) throw new Error(`${this.label}: ${what} ${shapeStr(shape)} is draw #${this.i + 1}, but only ${this.draws.length} were recorded`);
    if (numel(d.shape) !== numel(shape) || d.shape.length !== shape.length || d.shape.some((v, k) => v !== shape[k])) {
      throw new Error(`${this.label}: ${what} #${this.i + 1} wants shape ${shapeStr(shape)} but the recorded draw is ${shapeStr(d.shape)}`);
    }
    this.i++;
    return Float32Array.from(toFloat32(d));
  }

  /** how many recorded draws were used */
  get used(): number { return this.i; }
  get remaining(): number { return this.draws.length - this.i; }
}

export function makeNoise(seed?: number): NoiseSource {
  return new SeededNoise(seed ?? Math.floor(Math.random() * 2 ** 31));
}
