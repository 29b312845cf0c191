/**
 * Relaxed SIMD (f32x4.relaxed_madd: FMA on x64) for the run-time assembled kernels.
 *
 * Node ≥ 22 (V8 ≥ 11.4) has it on. Node 20 has it behind `--experimental-wasm-relaxed-simd`; V8 reads that flag when a
 * module is validated/compiled, so `v8.setFlagsFromString` at run time, before our first module, turns it on without a
 * re-exec (verified on Node 20.20: WebAssembly.validate of a relaxed_madd module goes false → true). Detection is a
 * WebAssembly.validate of a tiny module using f32x4.relaxed_madd.
 *
 * MUCODEC_FMA=0 (or `setFmaMode('off')`) keeps the SIMD128 path (mul + add) even where relaxed SIMD exists; the
 * default ('auto') uses FMA where available.
 */
import { createRequire } from 'node:module';

/** () → v128: relaxed_madd(0, 0, 0) */
const PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type () → v128
  0x03, 0x02, 0x01, 0x00,
  0x0a, 0x3d, 0x01, 0x3b, 0x00, // code section (61 bytes): 1 body of 59 bytes, no locals
  0xfd, 0x0c, ...new Array<number>(16).fill(0),
  0xfd, 0x0c, ...new Array<number>(16).fill(0),
  0xfd, 0x0c, ...new Array<number>(16).fill(0),
  0xfd, 0x85, 0x02, // f32x4.relaxed_madd (0xFD 0x105)
  0x0b,
]);

let flagTried = false;
let mode: 'auto' | 'off' = process.env.MUCODEC_FMA === '0' || process.env.MUCODEC_FMA === 'off' ? 'off' : 'auto';

/** true when this engine validates f32x4.relaxed_madd (after trying the Node 20 flag once) */
export function relaxedSimdSupported(): boolean {
  if (typeof WebAssembly?.validate !== 'function') return false;
  if (WebAssembly.validate(PROBE)) return true;
  if (!flagTried) {
    flagTried = true;
    try {
      const v8 = createRequire(import.meta.url)('node:v8') as { setFlagsFromString(f: string): void };
      v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    } catch { /* not Node: stay on SIMD128 */ }
    return WebAssembly.validate(PROBE);
  }
  return false;
}

/** whether the kernels assembled now use FMA (relaxed SIMD present and not switched off) */
export function useFma(): boolean {
  return mode === 'auto' && relaxedSimdSupported();
}

/** 'off': SIMD128 mul + add even where relaxed SIMD exists (tests run both paths); 'auto': FMA where available */
export function setFmaMode(m: 'auto' | 'off'): void {
  mode = m;
}

export function fmaMode(): 'auto' | 'off' {
  return mode;
}
