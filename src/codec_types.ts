/**
 * The option and result types of the MuCodec API (src/codec.ts): model configuration, load / encode / decode /
 * reconstruct options, progress reports.
 */
import type { TacotronStftConfig } from './audio/mel.js';
import type { Audio } from './audio/wav.js';
import type { CodesMeta } from './codesfile.js';
import type { EncodeProgress } from './encoder.js';
import type { Params } from './params.js';
import type { RVQConfig } from './rvq/rvq.js';
import type { HostTensor } from './hosttensor.js';
import type { NoiseSource } from './noise.js';
import type { Solver } from './sampler/index.js';
import type { VaeConfig } from './vae/autoencoder.js';
import type { HifiganConfig } from './vocoder/hifigan.js';

/** The model configuration (snake_case upstream names; the `model` object of weights/config.json). */
export interface MuCodecConfig {
  /** MuQ kwargs (encoder_dim, encoder_depth, conv_dim, n_mels, hop_length, label_rate) + `conformer` (W2V2C config) */
  muq: Record<string, unknown> & { conformer?: Record<string, unknown> };
  /** MuCodec layer_num: the codes use MuQ layer_results[layer_num − 1] */
  layer_num: number;
  rvq_muencoder_emb: RVQConfig;
  /** decoder side (decoderConfigFromUpstream reads these): estimator, cond_muencoder_emb, normfeat, num_channels */
  estimator?: Record<string, unknown>;
  /** AutoencoderKL ddconfig / embed_dim + HiFi-GAN `vocoder` */
  vae?: Partial<VaeConfig> & { vocoder?: HifiganConfig };
  stft?: Partial<TacotronStftConfig>;
  sample_rate?: number;
  [k: string]: unknown;
}

export type MuCodecPart = 'encoder' | 'decoder';

export interface LoadOptions {
  /** folder written by `mucodec convert` (config.json + encoder/decoder/vae .safetensors) */
  weightsDir?: string;
  /** or: parameters already in memory (the state-dict names of the three checkpoints, as in weights.pt of the
   *  e2e fixture: `muencoder.…`, `cfm_wrapper.…`, `first_stage_model.…`, `scale_factor`) + their configuration */
  weights?: Params | Map<string, HostTensor>;
  config?: MuCodecConfig;
  /** tfjs backend to initialise first (default: keep the current one / auto) */
  backend?: string;
  /**
   * wasm compute threads (XNNPACK pool sharing one heap; default MUCODEC_THREADS, else one per core; 1 = the
   * single-threaded path). Results are the same whatever the count. Fixed when the wasm backend starts: asking for
   * another count once it runs is an error.
   */
  threads?: number | 'auto';
  /** parts to build now instead of on first use */
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

export interface DecodeProgress {
  /** 'prompt': encoding the prompt; 'sample': DiT steps of a window; 'audio': VAE + vocoder of a window */
  phase: 'prompt' | 'sample' | 'audio';
  /** 0-based window and the number of windows */
  window: number;
  windows: number;
  /** solver step (1-based) and steps, during 'sample' */
  step?: number;
  steps?: number;
  /** overall fraction done in [0, 1] (steps weighted like the audio phase of a window) */
  fraction: number;
}

export interface DecodeOptions {
  /** Euler steps per window (code2sound default 20; reconstruct uses 50 like sound2sound) */
  steps?: number;
  /** classifier-free guidance (upstream's loop uses 1.5) */
  guidanceScale?: number;
  /** ODE solver: 'euler' (upstream), 'heun', 'midpoint', 'rk4', a registered name or a Solver */
  sampler?: string | Solver;
  /** explicit time schedule 0 … 1 (research; default linspace(0, 1, steps + 1)) */
  tSpan?: ArrayLike<number>;
  /** seed of the one noise source (same seed → identical output); random when absent */
  seed?: number;
  /** or the noise source itself (e.g. ReplayNoise of recorded draws) */
  noise?: NoiseSource;
  /** in-context prompt audio (any rate, mono or stereo): its first 10.24 s (20.48–30.72 s when longer than
   *  30.76 s) condition window 0, as upstream code2sound's `prompt` */
  prompt?: Audio;
  onProgress?: (p: DecodeProgress) => void;
  signal?: AbortSignal;
  /** window duration in seconds (upstream min_duration; only 40.96 aligns with the DiT's 1024-code windows) */
  duration?: number;
}

export interface ReconstructOptions extends DecodeOptions, Omit<EncodeOptions, 'onProgress'> {
  onEncodeProgress?: (p: EncodeProgress) => void;
}
