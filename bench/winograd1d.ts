/**
 * `node dist/bench/winograd1d.js [--threads N]`: the HiFi-GAN resblock convolutions of 1 s of mel (the five levels of
 * the 48 kHz vocoder: 768…48 channels, k = 3/7/11/15, dilations 1/3/5; each (k, d) pair counted as the vocoder runs
 * it: convs1 at d, convs2 at 1) run directly (the vocoder's Conv1dCore: XNNPACK conv, bias + leaky ReLU fused) and
 * by layers/winograd1d.ts (F(3,3) on 3-tap kernel chunks). Best of 3 per conv. The README's hifigan note quotes it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend.js';
import { parseThreads, requestWasmThreads } from '../src/workers/wasm_threads.js';
import { Conv1dWinograd } from '../layers/winograd1d.js';
import { Conv1dCore } from '../src/vocoder/hifigan.js';
import { filler, machineInfo } from './common.js';

const ti = process.argv.indexOf('--threads');
requestWasmThreads(parseThreads(ti > 0 ? process.argv[ti + 1] : process.env.MUCODEC_THREADS));
await initBackend('wasm');
const fill = filler(5);

function best(f: () => tf.Tensor): number {
  f().dispose();
  let b = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const y = f();
    y.dataSync();
    b = Math.min(b, performance.now() - t0);
    y.dispose();
  }
  return b / 1000;
}

console.log(`conv1d direct vs Winograd F(3,3)-chunked, resblock convs of 1 s of mel (${machineInfo()}, backend ${tf.getBackend()})`);
let totD = 0, totW = 0;
for (const [c, len] of [[768, 600], [384, 3000], [192, 12000], [96, 24000], [48, 48000]] as const) {
  let sd = 0, sw = 0;
  for (const k of [3, 7, 11, 15]) {
    for (const d of [1, 3, 5]) {
      const pad = Math.floor((k * d - d) / 2);
      const w = fill(k * c * c, 0.05), b = fill(c, 0.1);
      const x = tf.tensor3d(fill(len * c, 1), [1, len, c]);
      const core = new Conv1dCore(w, [k, c, c], b, pad, pad, d);
      const wg = new Conv1dWinograd(w, k, c, c, b, pad, pad, d);
      const td = best(() => core.apply(x, { slope: 0.1 }));
      const tw = best(() => wg.apply(x, 0.1));
      // convs1 at dilation d, and its convs2 partner at dilation 1 (timed in the d = 1 case)
      const n = d === 1 ? 4 : 1;
      sd += n * td; sw += n * tw;
      core.dispose(); wg.dispose(); x.dispose();
    }
  }
  console.log(`  ${String(c).padStart(4)} channels × ${String(len).padStart(5)} samples: direct ${sd.toFixed(2)} s, Winograd ${sw.toFixed(2)} s  (×${(sd / sw).toFixed(2)})`);
  totD += sd; totW += sw;
}
console.log(`  all levels: direct ${totD.toFixed(2)} s, Winograd ${totW.toFixed(2)} s`);
