/**
 * The error half-size weights add (issue 14, item 6): fixture cases run twice on the same inputs and noise — with
 * their float32 weights and with those weights rounded to float16 and widened back (what `mucodec convert --dtype
 * f16` files load as; the tensors the converter keeps float32 are kept here too, convert/half_weights.ts) — and the
 * f16 outputs compared with the f32 ones: max_abs, rel_l2, and SI-SDR for audio. `--encoder` rounds the MuQ
 * encoder and RVQ too (the converter's --half-encoder) and counts the codes that change.
 *
 *   node dist/bench/f16_weights_error.js [--encoder] [case dirs…]     (default: the decode-side cases listed below)
 *
 * The fixtures' weights are tiny random models of every real block (and the real RVQ codebook in rvq.*_real), not
 * the released checkpoints: the numbers say how the rounding propagates through these blocks, not the error on the
 * released model.
 */
import { join } from 'node:path';
import { initBackend } from '../src/backend.js';
import { loadCase, type FixtureCase } from '../src/fixtures.js';
import { narrowToHalf, widenHalf } from '../src/half.js';
import { toFloat32, type HostTensor } from '../src/hosttensor.js';
import { Params } from '../src/params.js';
import { stageFn } from '../src/parity.js';
import { siSdr } from '../src/metrics/sisdr.js';
import { keepFloat32Reason } from '../convert/half_weights.js';
import '../src/stages/index.js';

const FIX = join(import.meta.dirname, '..', '..', 'tests', 'fixtures');
const DEFAULT = [
  'decoder/cfm.solve_euler', 'decoder/mucodec.code2sound_latents', 'audio/vae.decode', 'audio/hifigan.generate',
  'audio/vae.decode_to_waveform', 'audio/mucodec.latents_to_audio', 'e2e/mucodec.sound2sound',
];
const ENCODER_PREFIXES = ['muencoder.', 'rvq_muencoder_emb.', 'rsq48tomuencoder.'];

function rounded(p: Params, encoder: boolean): { params: Params; halved: number; kept: number } {
  const map = new Map<string, HostTensor>();
  let halved = 0, kept = 0;
  const keptNames: string[] = [];
  for (const [name, t] of p.map) {
    const isFloat = t.dtype === 'float32' || t.dtype === 'float64' || t.dtype === 'float16' || t.dtype === 'bfloat16';
    const enc = ENCODER_PREFIXES.some((x) => name.startsWith(x));
    if (!isFloat || (enc && !encoder)) { map.set(name, t); continue; }
    const v = toFloat32(t);
    const why = keepFloat32Reason(name, t.shape, v);
    if (why) { kept++; keptNames.push(`${name} (${why})`); map.set(name, t); continue; }
    halved++;
    map.set(name, { dtype: 'float32', shape: [...t.shape], data: widenHalf(narrowToHalf(v)) });
  }
  if (keptNames.length) console.log(`  kept float32: ${keptNames.join(', ')}`);
  return { params: new Params(map, p.prefix, `${p.source} (f16-rounded)`), halved, kept };
}

function stats(a: Float32Array, b: Float32Array): { maxAbs: number; relL2: number } {
  let m = 0, d2 = 0, r2 = 0;
  for (let i = 0; i < a.length; i++) { const d = a[i]! - b[i]!; m = Math.max(m, Math.abs(d)); d2 += d * d; r2 += b[i]! * b[i]!; }
  return { maxAbs: m, relL2: Math.sqrt(d2 / Math.max(r2, 1e-30)) };
}

function rowsOf(t: HostTensor): Float32Array[] {
  const v = toFloat32(t);
  const n = t.shape.at(-1)!;
  return Array.from({ length: v.length / n }, (_, r) => v.subarray(r * n, (r + 1) * n));
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const encoder = args.includes('--encoder');
  const dirs = args.filter((a) => !a.startsWith('--'));
  await initBackend();
  for (const d of dirs.length ? dirs : DEFAULT.map((x) => join(FIX, x))) {
    const c32 = await loadCase(d);
    const fn = stageFn(c32.json.stage);
    if (!fn) throw new Error(`${d}: no stage ${c32.json.stage}`);
    const out32 = await fn(c32);
    const c16: FixtureCase = await loadCase(d);
    const r = rounded(await c16.weights(), encoder);
    c16.weights = async () => r.params;
    const out16 = await fn(c16);
    for (const key of Object.keys(c32.json.outputs)) {
      const a = out16[key], b = out32[key];
      if (!a || !b) continue;
      if (a.dtype === 'int32' || a.dtype === 'int64') {
        const x = Int32Array.from(toFloat32(a)), y = Int32Array.from(toFloat32(b));
        let diff = 0;
        for (let i = 0; i < y.length; i++) if (x[i] !== y[i]) diff++;
        console.log(`${c32.name} ${key}: ${diff}/${y.length} codes differ`);
        continue;
      }
      const s = stats(toFloat32(a), toFloat32(b));
      const audio = /wav|audio|output/.test(key) && a.shape.length >= 2;
      const sdr = audio ? siSdr(rowsOf(b), rowsOf(a)) : NaN;
      console.log(`${c32.name} ${key} ${JSON.stringify(a.shape)}: max_abs ${s.maxAbs.toExponential(2)} rel_l2 ${s.relL2.toExponential(2)}` +
        (audio ? ` SI-SDR ${sdr.toFixed(1)} dB` : '') + ` (${r.halved} tensors halved, ${r.kept} kept f32)`);
    }
  }
}

await main();
