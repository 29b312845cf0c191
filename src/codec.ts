/**
 * The MuCodec codec object (upstream generate.py `MuCodec`). Encode side here; the decode side attaches to the
 * same class (parts: ['decoder']).
 *
 *   const codec = await MuCodec.load({ weightsDir: 'weights/' });      // converted weights (convert/convert.ts)
 *   const { codes, meta } = await codec.encode({ sampleRate, channels }, { onProgress, signal });
 *   codec.dispose();
 *
 * Encode-only loading reads only `encoder.safetensors` (MuQ up to the needed layer, rsq48tomuencoder.kernel,
 * rvq_muencoder_emb.*) and builds only MuQ layers 0 .. layer_num − 2. Weights stay host-side in a Params map
 * until each module uploads its own tensors.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../convert/safetensors.js';
import { initBackend } from './backend.js';
import { sincResampleKernel } from './audio/resample.js';
import type { Audio } from './audio/wav.js';
import type { CodesMeta } from './codesfile.js';
import { FRAME_RATE, MuCodecEncoder, prepareStereo48k, type EncodeProgress } from './encoder.js';
import { MuQEncoder, muqConfigFromDicts } from './muq/muq.js';
import { Params } from './params.js';
import { RVQ, type RVQConfig } from './rvq/rvq.js';
import type { HostTensor } from './hosttensor.js';

/** The model configuration (snake_case upstream names; the `model` object of weights/config.json). */
export interface MuCodecConfig {
  /** MuQ kwargs (encoder_dim, encoder_depth, conv_dim, n_mels, hop_length, label_rate) + `conformer` (W2V2C config) */
  muq: Record<string, unknown> & { conformer?: Record<string, unknown> };
  /** MuCodec layer_num: the codes use MuQ layer_results[layer_num − 1] */
  layer_num: number;
  rvq_muencoder_emb: RVQConfig;
  sample_rate?: number;
  [k: string]: unknown;
}

export type MuCodecPart = 'encoder' | 'decoder';

export interface LoadOptions {
  /** folder written by `mucodec convert` (config.json + encoder.safetensors …) */
  weightsDir?: string;
  /** or: parameters already in memory (state-dict names of mucodec.pt) + their configuration */
  weights?: Params | Map<string, HostTensor>;
  config?: MuCodecConfig;
  /** tfjs backend to initialise first (default: keep the current one / auto) */
  backend?: string;
  /** what to build (default ['encoder']) */
  parts?: MuCodecPart[];
}

export interface EncodeOptions {
  onProgress?: (p: EncodeProgress) => void;
  signal?: AbortSignal;
  /** windows per MuQ batch (default 1) */
  batchSize?: number;
}

export interface EncodeResult {
  /** (n_codebooks, frames) row-major; MuCodec: one code per 40 ms */
  codes: Int32Array;
  meta: CodesMeta & { frames: number };
}

interface ConvertedConfigJson {
  format?: string;
  model?: MuCodecConfig;
  files?: Record<string, string>;
}

export class MuCodec {
  private constructor(
    readonly config: MuCodecConfig,
    private readonly enc: MuCodecEncoder | null,
  ) {}

  /** Load from a converted weights folder (or in-memory weights). Encode-only loading reads only the encoder file. */
  static async load(opts: LoadOptions): Promise<MuCodec> {
    if (opts.backend !== undefined) await initBackend(opts.backend);
    else await initBackend();
    const parts = opts.parts ?? ['encoder'];
    if (parts.includes('decoder')) throw new Error('MuCodec.load: the decoder part is not available yet');
    if (opts.weights) {
      if (!opts.config) throw new Error('MuCodec.load: `weights` needs `config`');
      const p = opts.weights instanceof Params ? opts.weights : new Params(opts.weights, '', 'weights');
      return MuCodec.fromParams(p, opts.config, { parts });
    }
    if (!opts.weightsDir) throw new Error('MuCodec.load: give `weightsDir` (a folder made by `mucodec convert`) or `weights` + `config`');
    const dir = opts.weightsDir;
    const cfgPath = join(dir, 'config.json');
    if (!existsSync(cfgPath)) throw new Error(`${dir}: no config.json (is this a folder written by \`mucodec convert\`?)`);
    let cj: ConvertedConfigJson;
    try {
      cj = JSON.parse(await readFile(cfgPath, 'utf8')) as ConvertedConfigJson;
    } catch (e) {
      throw new Error(`${cfgPath}: cannot parse (${(e as Error).message})`);
    }
    const config = opts.config ?? cj.model;
    if (!config) throw new Error(`${cfgPath}: no "model" configuration`);
    const file = join(dir, cj.files?.encoder ?? 'encoder.safetensors');
    if (!existsSync(file)) throw new Error(`${file}: missing (run \`mucodec convert\` again?)`);
    const map = await readSafetensors(file);
    return MuCodec.fromParams(new Params(map, '', file), config, { parts });
  }

  /**
   * Build from parameters named as in mucodec.pt (`muencoder.model.…`, `rsq48tomuencoder.kernel`,
   * `rvq_muencoder_emb.…`; extra tensors are ignored).
   */
  static fromParams(p: Params, config: MuCodecConfig, opts: { parts?: MuCodecPart[] } = {}): MuCodec {
    const parts = opts.parts ?? ['encoder'];
    if (parts.includes('decoder')) throw new Error('MuCodec.fromParams: the decoder part is not available yet');
    const layerIndex = config.layer_num - 1;
    const muqCfg = muqConfigFromDicts(config.muq, config.muq.conformer ?? {});
    const muq = new MuQEncoder(p.sub('muencoder.model.'), muqCfg, { maxLayerIndex: layerIndex });
    let rvq: RVQ | null = null;
    try {
      rvq = RVQ.fromParams(p.sub('rvq_muencoder_emb.'), config.rvq_muencoder_emb, 'encode');
      checkResampleKernel(p);
      const enc = new MuCodecEncoder(muq, rvq, config.layer_num);
      return new MuCodec(config, enc);
    } catch (e) {
      muq.dispose();
      rvq?.dispose();
      throw e;
    }
  }

  get encoder(): MuCodecEncoder {
    if (!this.enc) throw new Error('MuCodec: loaded without the encoder part');
    return this.enc;
  }

  /**
   * Audio (any rate, mono or stereo, planar float32) → codes, as upstream file2code + sound2code.
   * meta records the original rate/length/channels and the code format.
   */
  async encode(audio: Audio, opts: EncodeOptions = {}): Promise<EncodeResult> {
    const enc = this.encoder;
    const stereo = prepareStereo48k(audio);
    const codes = await enc.sound2code(stereo, opts);
    const nCb = this.config.rvq_muencoder_emb.n_codebooks;
    return {
      codes,
      meta: {
        sampleRate: audio.sampleRate,
        originalLength: audio.channels[0]!.length,
        channels: audio.channels.length,
        frameRate: FRAME_RATE,
        codebookSize: this.config.rvq_muencoder_emb.codebook_size,
        muqLayer: this.config.layer_num,
        nCodebooks: nCb,
        frames: codes.length / nCb,
      },
    };
  }

  dispose(): void {
    this.enc?.dispose();
  }
}

/**
 * rsq48tomuencoder.kernel (1, 1, 28), when the weights hold it, must equal the transforms.Resample(48000, 24000)
 * kernel the encoder builds (NOTES: it is a fresh torchaudio kernel); a different one is refused rather than
 * silently ignored.
 */
function checkResampleKernel(p: Params): void {
  if (!p.has('rsq48tomuencoder.kernel')) return;
  const k = p.f32('rsq48tomuencoder.kernel', [1, 1, 28]);
  const ref = sincResampleKernel(48000, 24000, { kernelPrecision: 'float64' }).kernel;
  for (let i = 0; i < 28; i++) {
    if (k[i] !== ref[i]) throw new Error(`${p.source}: rsq48tomuencoder.kernel[${i}] = ${k[i]} differs from torchaudio's Resample(48000, 24000) kernel (${ref[i]})`);
  }
}
