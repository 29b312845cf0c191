/**
 * The MuCodec codec object (upstream generate.py `MuCodec`): encode (sound2code), decode (code2sound) and
 * reconstruct (sound2sound) on one set of weights.
 *
 *   const codec = await MuCodec.load({ weightsDir: 'weights/' });     // a folder written by `mucodec convert`
 *   const { codes, meta } = await codec.encode({ sampleRate, channels }, { onProgress, signal });
 *   const audio = await codec.decode(codes, { steps: 20, seed: 1, onProgress });   // 48 kHz stereo
 *   codec.dispose();
 *
 * Loading is lazy and per part: `load` reads config.json only; the first encode reads `encoder.safetensors`
 * (MuQ up to the needed layer, rsq48tomuencoder.kernel, RVQ) and the first decode `decoder.safetensors`
 * (DiT, condition, normfeat, RVQ) and `vae.safetensors` (VAE + HiFi-GAN) — an encode-only user never loads the
 * DiT or the VAE. Weights stay host-side in Params maps until each module uploads its own tensors.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../convert/safetensors.js';
import { initBackend } from './backend.js';
import { devicePath } from './device.js';
import { requestWasmThreads } from './workers/wasm_threads.js';
import { TACOTRON_STFT_48K, TacotronSTFT } from './audio/mel.js';
import { openAudioSource } from './audio/open.js';
import type { Audio } from './audio/wav.js';
import type { AudioSource } from './audio/source.js';
import { Stereo48kReader, sound2codeFromSource } from './encode_source.js';
import type { CodesMeta } from './codesfile.js';
import { checkConfigJson, checkModelConfig } from './config_check.js';
import { SerialQueue } from './serial.js';
import { checkAudio, checkCodes, checkCodesMetaAgainst, checkDecodeOptions, checkEncodeOptions } from './validate.js';
import { FRAME_RATE, MuCodecEncoder, checkResampleKernel, prepareLength48k, prepareStereo48k } from './encoder.js';
import { MuQEncoder, muqConfigFromDicts } from './muq/muq.js';
import { Params } from './params.js';
import { RVQ } from './rvq/rvq.js';
import { MuCodecDecoder, decoderConfigFromUpstream } from './decoder.js';
import { collectAudio, decodeChunks, type DecodeParts as StreamParts } from './decode_stream.js';
import { checkDecodeBatchOptions, decodeBatchWith, type DecodeBatchOptions } from './batch_decode.js';
import { AUDIOLDM_48K_VAE, AutoencoderKL } from './vae/autoencoder.js';
import { HIFIGAN_48K, HifiGanGenerator } from './vocoder/hifigan.js';
import type {
  DecodeOptions, EncodeOptions, EncodeResult, LoadOptions, MuCodecConfig, MuCodecPart, ReconstructOptions,
} from './codec_types.js';

export type {
  DecodeOptions, DecodeProgress, EncodeOptions, EncodeResult, LoadOptions, MuCodecConfig, MuCodecPart, ReconstructOptions,
} from './codec_types.js';

type WeightFile = 'encoder' | 'decoder' | 'vae';

type DecodeParts = Omit<StreamParts, 'encoder'>;

export { cutPrompt } from './prompt.js';

export class MuCodec {
  private enc: MuCodecEncoder | null = null;
  private dec: DecodeParts | null = null;
  private readonly fileCache = new Map<WeightFile, Params>();
  /** parts being built (so two first uses build once) */
  private readonly building = new Map<MuCodecPart, Promise<void>>();
  /** encode / decode / reconstruct run one at a time (src/serial.ts) */
  private readonly queue = new SerialQueue();
  private disposed = false;

  private constructor(
    readonly config: MuCodecConfig,
    private readonly source: { dir: string; files: Record<string, string> } | { params: Params },
  ) {}

  /** Read a converted weights folder's config.json (or take in-memory weights); parts load on first use. */
  static async load(opts: LoadOptions): Promise<MuCodec> {
    if (opts.threads !== undefined) requestWasmThreads(opts.threads);
    await initBackend(opts.backend);
    let codec: MuCodec;
    if (opts.weights) {
      if (!opts.config) throw new Error('MuCodec.load: `weights` needs `config`');
      const p = opts.weights instanceof Params ? opts.weights : new Params(opts.weights, '', 'weights');
      codec = new MuCodec(checkModelConfig(opts.config, 'MuCodec.load: config'), { params: p });
    } else {
      if (!opts.weightsDir) throw new Error('MuCodec.load: give `weightsDir` (a folder made by `mucodec convert`) or `weights` + `config`');
      const dir = opts.weightsDir;
      const cfgPath = join(dir, 'config.json');
      if (!existsSync(cfgPath)) {
        throw new Error(`${dir}: no config.json — not a folder written by \`mucodec convert\` (get the released model with \`mucodec fetch-weights\`)`);
      }
      let json: unknown;
      try {
        json = JSON.parse(await readFile(cfgPath, 'utf8'));
      } catch (e) {
        throw new Error(`${cfgPath}: cannot parse (${(e as Error).message})`);
      }
      const cj = checkConfigJson(json, cfgPath);
      const config = opts.config ? checkModelConfig(opts.config, 'MuCodec.load: config') : checkModelConfig(cj.model, `${cfgPath}: "model"`);
      codec = new MuCodec(config, { dir, files: cj.files ?? {} });
    }
    try {
      for (const part of opts.parts ?? []) await codec.ensure(part);
    } catch (e) {
      codec.dispose();
      throw e;
    }
    return codec;
  }

  /**
   * Build from parameters named as in the checkpoints (`muencoder.model.…`, `rsq48tomuencoder.kernel`,
   * `rvq_muencoder_emb.…`, `cfm_wrapper.estimator.…`, `first_stage_model.…`; extra tensors are ignored).
   */
  static fromParams(p: Params, config: MuCodecConfig): MuCodec {
    return new MuCodec(checkModelConfig(config, 'MuCodec.fromParams: config'), { params: p });
  }

  private async weights(file: WeightFile): Promise<Params> {
    const hit = this.fileCache.get(file);
    if (hit) return hit;
    let p: Params;
    if ('params' in this.source) {
      p = this.source.params;
    } else {
      const path = join(this.source.dir, this.source.files[file] ?? `${file}.safetensors`);
      if (!existsSync(path)) throw new Error(`${path}: missing (run \`mucodec convert\` again?)`);
      p = new Params(await readSafetensors(path), '', path);
    }
    this.fileCache.set(file, p);
    return p;
  }

  /** Build a part once, however many callers ask for it at the same time. */
  private async ensure(part: MuCodecPart): Promise<void> {
    if (this.disposed) throw new Error('MuCodec: used after dispose()');
    if (part === 'encoder' ? this.enc : this.dec) return;
    let p = this.building.get(part);
    if (!p) {
      p = this.build(part).finally(() => this.building.delete(part));
      this.building.set(part, p);
    }
    await p;
    if (this.disposed) { this.release(); throw new Error('MuCodec: disposed while loading the model'); }
  }

  private async build(part: MuCodecPart): Promise<void> {
    if (part === 'encoder') {
      if (this.enc) return;
      const p = await this.weights('encoder');
      const config = this.config;
      const muqCfg = muqConfigFromDicts(config.muq, config.muq.conformer ?? {});
      const muq = new MuQEncoder(p.sub('muencoder.model.'), muqCfg, { maxLayerIndex: config.layer_num - 1 });
      let rvq: RVQ | null = null;
      try {
        rvq = RVQ.fromParams(p.sub('rvq_muencoder_emb.'), config.rvq_muencoder_emb, 'encode');
        checkResampleKernel(p);
        this.enc = new MuCodecEncoder(muq, rvq, config.layer_num);
      } catch (e) {
        muq.dispose();
        rvq?.dispose();
        throw e;
      }
      return;
    }
    if (this.dec) return;
    const pd = await this.weights('decoder');
    const pv = await this.weights('vae');
    const vaeCfg = this.config.vae ?? {};
    const decoder = new MuCodecDecoder(pd, decoderConfigFromUpstream(this.config as unknown as Record<string, unknown>));
    try {
      const vae = new AutoencoderKL(pv.sub('first_stage_model.'), {
        ddconfig: vaeCfg.ddconfig ?? AUDIOLDM_48K_VAE.ddconfig, embed_dim: vaeCfg.embed_dim ?? AUDIOLDM_48K_VAE.embed_dim,
      });
      const vocoder = new HifiGanGenerator(pv.sub('first_stage_model.vocoder.'), vaeCfg.vocoder ?? HIFIGAN_48K);
      const stft = new TacotronSTFT({ ...TACOTRON_STFT_48K, ...(this.config.stft ?? {}) });
      this.dec = { decoder, vae, vocoder, stft };
    } catch (e) {
      decoder.dispose();
      throw e;
    }
  }

  /** The encode-side model (loads it on first use). */
  async encoder(): Promise<MuCodecEncoder> {
    await this.ensure('encoder');
    return this.enc!;
  }

  /**
   * Audio (any rate, mono or stereo, planar float32) → codes, as upstream file2code + sound2code.
   * meta records the original rate/length/channels and the code format.
   */
  async encode(audio: Audio, opts: EncodeOptions = {}): Promise<EncodeResult> {
    checkAudio(audio, 'encode');
    checkEncodeOptions(opts, 'encode');
    return this.queue.run('encode', opts.signal, (signal) => this.encodeNow(audio, { ...opts, signal }));
  }

  private async encodeNow(audio: Audio, opts: EncodeOptions): Promise<EncodeResult> {
    const enc = await this.encoder();
    const codes = await enc.sound2code(prepareStereo48k(audio), opts);
    return this.encodeResult(codes, audio.sampleRate, audio.channels[0]!.length, audio.channels.length);
  }

  /** the codes with the metadata a .mcodes file records (original rate/length/channels, the code format) */
  private encodeResult(codes: Int32Array, sampleRate: number, originalLength: number, channels: number): EncodeResult {
    const rvq = this.config.rvq_muencoder_emb;
    return {
      codes,
      meta: {
        sampleRate, originalLength, channels, frameRate: FRAME_RATE, codebookSize: rvq.codebook_size,
        muqLayer: this.config.layer_num, nCodebooks: rvq.n_codebooks, frames: codes.length / rvq.n_codebooks,
      },
    };
  }

  /**
   * A streaming source (e.g. `openAudioSource(path)`) → codes, the same bytes as `encode` of the whole audio, with
   * memory bounded by a batch of windows whatever the length (src/encode_source.ts: one pass for the peak, one
   * per window). Queued like encode/decode. The caller closes the source.
   */
  async encodeSource(source: AudioSource, opts: EncodeOptions = {}): Promise<EncodeResult> {
    const reader = new Stereo48kReader(source); // refuses what cannot be encoded before the model loads
    checkEncodeOptions(opts, 'encode');
    return this.queue.run('encode', opts.signal, async (signal) => {
      const codes = await sound2codeFromSource(await this.encoder(), reader, { ...opts, signal });
      return this.encodeResult(codes, source.sampleRate, source.frames, source.channels);
    });
  }

  /**
   * An audio file (WAV, FLAC, MP3, Ogg Vorbis, Opus: chosen by content) → codes, streamed (encodeSource of
   * openAudioSource(path)); header errors come before the model loads.
   */
  async encodeFile(path: string, opts: EncodeOptions = {}): Promise<EncodeResult> {
    const source = await openAudioSource(path);
    try {
      return await this.encodeSource(source, opts);
    } finally {
      await source.close();
    }
  }

  /**
   * Codes (25 Hz, one codebook) → 48 kHz stereo, as upstream code2sound: codes repeated to whole 1024-code
   * windows at hop 768, the DiT sampled per window (in-context on the previous window's last 128 latent frames,
   * or on the prompt for window 0), each window decoded by the VAE and vocoder per channel, cross-faded, and cut
   * to int(n / 100 · 4 · 48000) samples. Windows are processed one at a time (memory does not grow with length);
   * the result is the concatenation of `decodeStream`'s chunks (src/decode_stream.ts).
   */
  async decode(codes: Int32Array | readonly number[], opts: DecodeOptions = {}): Promise<Audio> {
    // checked as given, before anything is converted or loaded (1.5, NaN, 2^32 + 5, "7" are refused)
    const checked = checkCodes(codes, this.config.rvq_muencoder_emb.codebook_size, 'decode');
    checkDecodeOptions(opts, 'decode');
    return this.queue.run('decode', opts.signal, (signal) => collectAudio(this.chunks(checked, { ...opts, signal }, 20, 'decode')));
  }

  /**
   * Several code sequences (`list`, each as `decode` takes it) → one Audio each, equal to `decode(codes, opts)` of
   * each alone; on a device backend `batchSize` of them share every DiT call (src/batch_decode.ts).
   */
  async decodeBatch(list: ReadonlyArray<Int32Array | readonly number[]>, opts: DecodeBatchOptions = {}): Promise<Audio[]> {
    if (!Array.isArray(list)) throw new Error('decodeBatch: give a list of code sequences');
    const checked = list.map((c, i) => checkCodes(c, this.config.rvq_muencoder_emb.codebook_size, `decodeBatch: sequence ${i}`));
    checkDecodeBatchOptions(opts);
    return this.queue.run('decode', opts.signal, async (signal) => {
      await this.ensure('decoder');
      return decodeBatchWith(this.dec!, checked, { ...opts, signal });
    });
  }

  /**
   * A codes file's header against this model (frame rate, codebook size and count, MuQ layer): throws naming the
   * field, the file's value and the model's when the model cannot decode the codes.
   */
  checkCodesMeta(meta: CodesMeta, source = '.mcodes'): void {
    const r = this.config.rvq_muencoder_emb;
    checkCodesMetaAgainst(meta, { frameRate: FRAME_RATE, codebookSize: r.codebook_size, nCodebooks: r.n_codebooks, muqLayer: this.config.layer_num }, source,
      'dir' in this.source ? `the model in ${this.source.dir}` : 'the model');
  }

  /**
   * `decode` as a stream: an async iterable of final 48 kHz stereo chunks (src/decode_stream.ts), window by window —
   * the first after window 0 (before window 1 is sampled), joining to exactly `decode`'s output. Arguments are
   * checked now; the call takes its turn in the codec's queue when the stream is first pulled and holds it until the
   * stream ends, fails or is left (`break` frees what it holds; a stream abandoned without `return()` keeps the
   * codec busy).
   */
  decodeStream(codes: Int32Array | readonly number[], opts: DecodeOptions = {}): AsyncGenerator<Audio, void, void> {
    const checked = checkCodes(codes, this.config.rvq_muencoder_emb.codebook_size, 'decodeStream');
    checkDecodeOptions(opts, 'decodeStream');
    return this.queue.stream('decode', opts.signal, (signal) => this.chunks(checked, { ...opts, signal }, 20, 'decode'));
  }

  private chunks(codes: Int32Array, opts: DecodeOptions, defaultSteps: number, what: string): AsyncGenerator<Audio, void, void> {
    return decodeChunks(async () => {
      await this.ensure('decoder');
      if (opts.prompt) await this.ensure('encoder');
      return { ...this.dec!, encoder: this.enc };
    }, codes, opts, defaultSteps, what);
  }

  /**
   * encode then decode (upstream sound2sound, 50 steps by default), cut to the input's duration at 48 kHz as
   * upstream's __main__ does (sound2sound itself returns ≈ 1920 samples per code).
   */
  async reconstruct(audio: Audio, opts: ReconstructOptions = {}): Promise<Audio> {
    checkAudio(audio, 'reconstruct');
    checkDecodeOptions(opts, 'reconstruct');
    return this.queue.run('reconstruct', opts.signal, (signal) => this.reconstructNow(audio, { ...opts, signal }));
  }

  private async reconstructNow(audio: Audio, opts: ReconstructOptions): Promise<Audio> {
    const { codes } = await this.encodeNow(audio, { signal: opts.signal, batchSize: opts.batchSize, onProgress: opts.onEncodeProgress });
    // the encoder's device state (MuQ weights, transformed Winograd filters and XNNPACK's packed copies of both: over a
    // GB at the real size) is not needed while decoding: free it before the decoder and the VAE fill the wasm heap (it is
    // rebuilt from the host weights on the next encode, or for a prompt)
    if (!opts.prompt && this.enc && !devicePath()) { this.enc.dispose(); this.enc = null; } // device path: kept resident
    // 50 steps unless given (an explicit `steps: undefined` is the default too)
    const out = await collectAudio(this.chunks(codes, opts, 50, 'reconstruct'));
    const n48 = prepareLength48k(audio);
    return { sampleRate: 48000, channels: out.channels.map((c) => c.length > n48 ? c.slice(0, n48) : c) };
  }

  /**
   * Free every tensor. A call still running is stopped at its next check point (it rejects: "dispose() was called
   * during this decode"), calls still queued reject without starting, and the tensors are freed once the running call
   * has stopped; later calls reject.
   */
  dispose(): void {
    this.disposed = true;
    if (this.queue.busy) {
      void this.queue.close().then(() => this.release());
    } else {
      void this.queue.close();
      this.release();
    }
  }

  private release(): void {
    this.enc?.dispose();
    this.enc = null;
    if (this.dec) {
      this.dec.decoder.dispose();
      this.dec.vae.dispose();
      this.dec.vocoder.dispose();
      this.dec = null;
    }
    this.fileCache.clear();
  }
}
