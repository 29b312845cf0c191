/**
 * Parity stage of the e2e family: `mucodec.sound2sound` — upstream generate.py MuCodec.sound2sound (encode, then
 * code2sound with its windows, VAE and vocoder) on tiny weights of every real block, run through the codec's own
 * public encode() and decode() (not a test-only assembly), with the recorded draws replayed.
 */
import type { MuCodecConfig } from '../codec.js';
import { MuCodec } from '../codec.js';
import { toFloat32 } from '../hosttensor.js';
import { ReplayNoise } from '../noise.js';
import { Params } from '../params.js';
import { registerStage } from '../parity.js';

registerStage('mucodec.sound2sound', async (c) => {
  const cfg = c.json.config as MuCodecConfig & { steps?: number };
  const sc = (c.json.scalars ?? {}) as Record<string, unknown>;
  const p = await c.weights();
  const codec = MuCodec.fromParams(new Params(p.map, '', p.source), cfg);
  try {
    // sound[c, n] = in.audio[c, n mod P], 0 ≤ n < input_length (input_construction)
    const inp = c.t(c.json.inputs!.sound!);
    const [rows, P] = inp.shape as [number, number];
    const n = Number(sc.input_length ?? P);
    const d = toFloat32(inp);
    const channels = Array.from({ length: rows }, (_, r) => Float32Array.from({ length: n }, (_, j) => d[r * P + (j % P)]!));
    const { codes } = await codec.encode({ sampleRate: Number(sc.sample_rate ?? 48000), channels });
    const audio = await codec.decode(codes, {
      steps: Number(sc.steps ?? cfg.steps ?? 50),
      duration: Number(sc.min_duration ?? 40.96),
      noise: new ReplayNoise(c.noise(), `${c.name} noise`),
    });
    const len = audio.channels[0]!.length;
    const flat = new Float32Array(audio.channels.length * len);
    audio.channels.forEach((ch, r) => flat.set(ch, r * len));
    return {
      'out.codes': { dtype: 'int32', shape: [1, 1, codes.length], data: codes },
      'out.audio': { dtype: 'float32', shape: [audio.channels.length, len], data: flat },
    };
  } finally {
    codec.dispose();
  }
});
