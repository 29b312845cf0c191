/**
 * AudioLDM 48 kHz first-stage model (MuCodec tools/get_melvaehifigan48k.py: Encoder, Decoder, AutoencoderKL,
 * DiagonalGaussianDistribution). Mel images are (B, 1, frames, 256) NCHW at the boundaries (H = time,
 * W = mel bins); inside, one sample at a time as a host NHWC Image with row-banded convs (./tiled.ts), or on the
 * device path (src/device.ts) as a DeviceImage whose bands stay on the device until the stage's result is read.
 */
import { devicePath } from '../device.js';
import { drainSteps, type Step } from '../steps.js';
import { Conv2d } from '../../layers/conv.js';
import { numel, shapeStr, toFloat32, type HostTensor } from '../hosttensor.js';
import type { NoiseSource } from '../noise.js';
import { Params } from '../params.js';
import { AttnBlock, conv2d, GroupNormParams, ResnetBlock } from './blocks.js';
import {
  conv1x1, conv3x3, downsample, imageFromNCHW, imagesToNCHW, normSwish, upsample, type Image, type TileOptions,
} from './tiled.js';
import { cloneImage, deviceImage, disposeImage, hostImageSteps, onDevice, type AnyImage } from './device_image.js';

/** ddconfig of GM:build_pretrained_models (upstream names) */
export interface DdConfig {
  double_z: boolean;
  mel_bins: number;
  z_channels: number;
  resolution: number;
  downsample_time: boolean;
  in_channels: number;
  out_ch: number;
  ch: number;
  ch_mult: number[];
  num_res_blocks: number;
  attn_resolutions: number[];
  dropout: number;
}

export interface VaeConfig {
  ddconfig: DdConfig;
  embed_dim: number;
}

/** The real AudioLDM-48k VAE configuration (GM:build_pretrained_models). */
export const AUDIOLDM_48K_VAE: VaeConfig = {
  ddconfig: {
    double_z: true, mel_bins: 256, z_channels: 16, resolution: 256, downsample_time: false,
    in_channels: 1, out_ch: 1, ch: 128, ch_mult: [1, 2, 4, 8], num_res_blocks: 2, attn_resolutions: [], dropout: 0,
  },
  embed_dim: 16,
};

function checkConfig(c: DdConfig): void {
  if (c.attn_resolutions.length) throw new Error('VAE: attn_resolutions other than [] are not supported (AudioLDM-48k uses none)');
  if (c.downsample_time) throw new Error('VAE: downsample_time is not supported (AudioLDM-48k uses False)');
  if (!c.double_z) throw new Error('VAE: AutoencoderKL asserts double_z');
}

function releaseAll(list: Array<{ dispose(): void }>): void {
  for (const m of list) m.dispose();
}

/** GM:Encoder (no attention inside the levels; mid block always has one AttnBlock) */
export class Encoder {
  readonly convIn: Conv2d;
  readonly down: Array<{ block: ResnetBlock[]; downsample: Conv2d | null }> = [];
  readonly mid1: ResnetBlock;
  readonly midAttn: AttnBlock;
  readonly mid2: ResnetBlock;
  readonly normOut: GroupNormParams;
  readonly convOut: Conv2d;

  constructor(p: Params, readonly cfg: DdConfig) {
    checkConfig(cfg);
    const { ch, ch_mult: mult, num_res_blocks: nrb } = cfg;
    this.convIn = conv2d(p, 'conv_in', cfg.in_channels, ch, 3);
    const inMult = [1, ...mult];
    let blockIn = ch;
    for (let i = 0; i < mult.length; i++) {
      blockIn = ch * inMult[i]!;
      const blockOut = ch * mult[i]!;
      const block: ResnetBlock[] = [];
      for (let j = 0; j < nrb; j++) {
        block.push(new ResnetBlock(p.sub(`down.${i}.block.${j}.`), blockIn, blockOut));
        blockIn = blockOut;
      }
      const ds = i !== mult.length - 1 ? conv2d(p, `down.${i}.downsample.conv`, blockIn, blockIn, 3) : null;
      this.down.push({ block, downsample: ds });
    }
    this.mid1 = new ResnetBlock(p.sub('mid.block_1.'), blockIn, blockIn);
    this.midAttn = new AttnBlock(p.sub('mid.attn_1.'), blockIn);
    this.mid2 = new ResnetBlock(p.sub('mid.block_2.'), blockIn, blockIn);
    this.normOut = new GroupNormParams(p, 'norm_out', blockIn);
    this.convOut = conv2d(p, 'conv_out', blockIn, cfg.double_z ? 2 * cfg.z_channels : cfg.z_channels, 3);
  }

  /** one sample (H = frames, W = mel bins, C = in_channels) → (H/8, W/8, 2·z_channels); `mid` gets the mid-block output */
  apply<I extends AnyImage>(x: I, o: TileOptions = {}, taps?: { mid?: (h: I) => void }): I {
    return drainSteps(this.applySteps(x, o, taps));
  }

  /**
   * apply as a step generator: one yield after every block (src/steps.ts). The images between blocks are host
   * arrays, or device images (freed as soon as the next block has run, and when the generator is closed early).
   */
  *applySteps<I extends AnyImage>(x: I, o: TileOptions = {}, taps?: { mid?: (h: I) => void }): Generator<string, I, void> {
    let h = conv3x3(x, this.convIn, o);
    const next = (y: I): void => { disposeImage(h); h = y; };
    try {
      for (let i = 0; i < this.down.length; i++) {
        const lvl = this.down[i]!;
        for (let j = 0; j < lvl.block.length; j++) {
          next(lvl.block[j]!.apply(h, o));
          yield `down.${i}.block.${j}`;
        }
        if (lvl.downsample) next(downsample(h, lvl.downsample, o));
      }
      next(this.mid1.apply(h, o));
      yield 'mid.block_1';
      next(this.midAttn.apply(h, o));
      yield 'mid.attn_1';
      next(this.mid2.apply(h, o));
      taps?.mid?.(h);
      const a = this.normOut.affine(h);
      try {
        return conv3x3(h, this.convOut, { ...o, pre: (t) => normSwish(t, a) });
      } finally { a.dispose(); }
    } finally { disposeImage(h); }
  }

  dispose(): void {
    this.convIn.dispose();
    for (const l of this.down) { releaseAll(l.block); l.downsample?.dispose(); }
    this.mid1.dispose(); this.midAttn.dispose(); this.mid2.dispose(); this.convOut.dispose();
  }
}

/** GM:Decoder (give_pre_end False, tanh_out False) */
export class Decoder {
  readonly convIn: Conv2d;
  readonly mid1: ResnetBlock;
  readonly midAttn: AttnBlock;
  readonly mid2: ResnetBlock;
  /** up[level], level 0 = finest (as upstream's self.up after the prepends) */
  readonly up: Array<{ block: ResnetBlock[]; upsample: Conv2d | null }> = [];
  readonly normOut: GroupNormParams;
  readonly convOut: Conv2d;

  constructor(p: Params, readonly cfg: DdConfig) {
    checkConfig(cfg);
    const { ch, ch_mult: mult, num_res_blocks: nrb } = cfg;
    let blockIn = ch * mult[mult.length - 1]!;
    this.convIn = conv2d(p, 'conv_in', cfg.z_channels, blockIn, 3);
    this.mid1 = new ResnetBlock(p.sub('mid.block_1.'), blockIn, blockIn);
    this.midAttn = new AttnBlock(p.sub('mid.attn_1.'), blockIn);
    this.mid2 = new ResnetBlock(p.sub('mid.block_2.'), blockIn, blockIn);
    const levels: Array<{ block: ResnetBlock[]; upsample: Conv2d | null }> = [];
    for (let i = mult.length - 1; i >= 0; i--) {
      const blockOut = ch * mult[i]!;
      const block: ResnetBlock[] = [];
      for (let j = 0; j < nrb + 1; j++) {
        block.push(new ResnetBlock(p.sub(`up.${i}.block.${j}.`), blockIn, blockOut));
        blockIn = blockOut;
      }
      const us = i !== 0 ? conv2d(p, `up.${i}.upsample.conv`, blockIn, blockIn, 3) : null;
      levels[i] = { block, upsample: us };
    }
    this.up = levels;
    this.normOut = new GroupNormParams(p, 'norm_out', blockIn);
    this.convOut = conv2d(p, 'conv_out', blockIn, cfg.out_ch, 3);
  }

  /** one sample (T, W_z, z_channels) → (T·2^(L−1), W_z·2^(L−1), out_ch) */
  apply<I extends AnyImage>(z: I, o: TileOptions = {}, taps?: { mid?: (h: I) => void }): I {
    return drainSteps(this.applySteps(z, o, taps));
  }

  /** apply as a step generator: one yield after every block (src/steps.ts; images between blocks as in Encoder) */
  *applySteps<I extends AnyImage>(z: I, o: TileOptions = {}, taps?: { mid?: (h: I) => void }): Generator<string, I, void> {
    let h = conv3x3(z, this.convIn, o);
    const next = (y: I): void => { disposeImage(h); h = y; };
    try {
      next(this.mid1.apply(h, o));
      yield 'mid.block_1';
      next(this.midAttn.apply(h, o));
      yield 'mid.attn_1';
      next(this.mid2.apply(h, o));
      taps?.mid?.(h);
      yield 'mid.block_2';
      for (let i = this.up.length - 1; i >= 0; i--) {
        const lvl = this.up[i]!;
        for (let j = 0; j < lvl.block.length; j++) {
          next(lvl.block[j]!.apply(h, o));
          yield `up.${i}.block.${j}`;
        }
        if (lvl.upsample) next(upsample(h, lvl.upsample, o));
      }
      const a = this.normOut.affine(h);
      try {
        return conv3x3(h, this.convOut, { ...o, pre: (t) => normSwish(t, a) });
      } finally { a.dispose(); }
    } finally { disposeImage(h); }
  }

  dispose(): void {
    this.convIn.dispose(); this.mid1.dispose(); this.midAttn.dispose(); this.mid2.dispose();
    for (const l of this.up) { releaseAll(l.block); l.upsample?.dispose(); }
    this.convOut.dispose();
  }
}

/** scale_factor as upstream reads it: state_dict["scale_factor"].item() (a float32 value as a double) */
export function readScaleFactor(p: Params): number {
  const root = new Params(p.map, '', p.source);
  return root.scalar('scale_factor');
}

export interface EncodeResult {
  /** (B, z, T, W) scaled sample (or mode) = scale_factor · posterior.sample() */
  z: HostTensor;
  mean: HostTensor;
  /** clamped to [−30, 20] */
  logvar: HostTensor;
}

function hostF32(shape: number[], data: Float32Array): HostTensor {
  return { dtype: 'float32', shape, data };
}

/**
 * GM:AutoencoderKL, the parts MuCodec uses: encode_first_stage + get_first_stage_encoding (prompt latents)
 * and decode_first_stage (latents → log mel). Built lazily per half: `encoder`/`decoder` construct their
 * weights on first use so a decode-only caller never uploads the encoder.
 */
export class AutoencoderKL {
  private enc: Encoder | null = null;
  private dec: Decoder | null = null;
  private quantConv: Conv2d | null = null;
  private postQuantConv: Conv2d | null = null;
  readonly scaleFactor: number;
  tile: TileOptions = {};

  /** `p`: the first_stage_model subtree (names `encoder.*`, `decoder.*`, `quant_conv.*`, `post_quant_conv.*`) */
  constructor(readonly p: Params, readonly cfg: VaeConfig = AUDIOLDM_48K_VAE, scaleFactor?: number) {
    this.scaleFactor = scaleFactor ?? readScaleFactor(p);
  }

  get encoder(): Encoder {
    if (!this.enc) {
      this.enc = new Encoder(this.p.sub('encoder.'), this.cfg.ddconfig);
      const z2 = 2 * this.cfg.ddconfig.z_channels;
      this.quantConv = conv2d(this.p, 'quant_conv', z2, 2 * this.cfg.embed_dim, 1);
    }
    return this.enc;
  }

  get decoder(): Decoder {
    if (!this.dec) {
      this.dec = new Decoder(this.p.sub('decoder.'), this.cfg.ddconfig);
      this.postQuantConv = conv2d(this.p, 'post_quant_conv', this.cfg.embed_dim, this.cfg.ddconfig.z_channels, 1);
    }
    return this.dec;
  }

  /**
   * encode_first_stage + get_first_stage_encoding for each row of a (B, 1, frames, mel) batch, one row at a
   * time (as code2sound encodes `true_mel[[m]]`): moments = quant_conv(encoder(x)); mean, logvar = chunk(2);
   * logvar clamped to [−30, 20]; z = scale_factor · (mean + exp(0.5·logvar)·ε) with ε = noise.randn((1, z, T, W))
   * drawn per row in order (use_mode=False, as MuCodec), or scale_factor · mean when `noise` is null (use_mode).
   */
  encode(mel: HostTensor, noise: NoiseSource | null, taps?: { mid?: (b: number, h: Image) => void; moments?: (b: number, m: Image) => void }): EncodeResult {
    return drainSteps(this.encodeSteps(mel, noise, taps));
  }

  /**
   * encode as a step generator: one yield after every encoder block of every row (src/steps.ts). On the device path
   * the row stays on the device through the encoder; its moments (and the tapped images) are read back once per row.
   */
  *encodeSteps(mel: HostTensor, noise: NoiseSource | null, taps?: { mid?: (b: number, h: Image) => void; moments?: (b: number, m: Image) => void }): Generator<Step, EncodeResult, void> {
    const [B, cin, F, M] = mel.shape as [number, number, number, number];
    if (mel.shape.length !== 4 || cin !== this.cfg.ddconfig.in_channels) throw new Error(`vae.encode: mel must be (B, ${this.cfg.ddconfig.in_channels}, frames, mel_bins), got ${shapeStr(mel.shape)}`);
    const enc = this.encoder;
    const x = toFloat32(mel);
    const e = this.cfg.embed_dim;
    const sf = Math.fround(this.scaleFactor);
    let zs: Float32Array | null = null, means: Float32Array | null = null, logvars: Float32Array | null = null;
    let T = 0, W = 0;
    for (let b = 0; b < B; b++) {
      const host = imageFromNCHW(x, [B, cin, F, M], b);
      const moments = yield* this.encodeRowSteps(devicePath() ? deviceImage(host) : host, b, taps);
      taps?.moments?.(b, moments);
      T = moments.h; W = moments.w;
      const per = e * T * W;
      if (!zs) { zs = new Float32Array(B * per); means = new Float32Array(B * per); logvars = new Float32Array(B * per); }
      const eps = noise ? noise.randn([1, e, T, W], `vae posterior sample ε (row ${b})`) : null;
      // DiagonalGaussianDistribution: channels [0, e) mean, [e, 2e) logvar; NHWC → NCHW here, float32 steps
      for (let c = 0; c < e; c++) {
        for (let p = 0; p < T * W; p++) {
          const mean = moments.data[p * 2 * e + c]!;
          const lvRaw = moments.data[p * 2 * e + e + c]!;
          const lv = lvRaw < -30 ? -30 : lvRaw > 20 ? 20 : lvRaw;
          const o = b * per + c * T * W + p;
          means![o] = mean;
          logvars![o] = lv;
          let z = mean;
          if (eps) {
            const std = Math.fround(Math.exp(Math.fround(0.5 * lv)));
            z = Math.fround(mean + Math.fround(std * eps[c * T * W + p]!));
          }
          zs![o] = Math.fround(sf * z);
        }
      }
    }
    const shape = [B, e, T, W];
    return { z: hostF32(shape, zs!), mean: hostF32(shape, means!), logvar: hostF32(shape, logvars!) };
  }

  /** one row through the encoder and quant_conv → its moments on the host (a device row: read back here, once) */
  private *encodeRowSteps(img: AnyImage, b: number, taps?: { mid?: (b: number, h: Image) => void }): Generator<Step, Image, void> {
    let mid: AnyImage | null = null;
    let h: AnyImage | null = null, moments: AnyImage | null = null;
    try {
      h = yield* this.encoder.applySteps(img, this.tile, { mid: (m) => { mid = onDevice(m) ? cloneImage(m) : m; } });
      if (mid && taps?.mid) taps.mid(b, yield* hostImageSteps(mid, 'vae.encode mid'));
      moments = conv1x1(h, this.quantConv!, this.tile);
      return yield* hostImageSteps(moments, 'vae.encode moments');
    } finally {
      for (const t of [img, mid, h, moments]) if (t) disposeImage(t);
    }
  }

  /**
   * decode_first_stage: z·(1/scale_factor) (the reciprocal as a double, rounded to float32 like a tensor ×
   * Python-float product) → post_quant_conv → decoder. (B, embed_dim, T, W) → (B, out_ch, 8T, 8W) log mel.
   * Rows are decoded one at a time; `onRow` (if given) receives each row's mel image instead of collecting
   * them (the streaming path) and the return value is then null.
   */
  decode(z: HostTensor, taps?: { postQuant?: (b: number, x: Image) => void; mid?: (b: number, h: Image) => void }): HostTensor;
  decode(z: HostTensor, taps: { postQuant?: (b: number, x: Image) => void; mid?: (b: number, h: Image) => void } | undefined, onRow: (b: number, mel: Image) => void): null;
  decode(
    z: HostTensor,
    taps?: { postQuant?: (b: number, x: Image) => void; mid?: (b: number, h: Image) => void },
    onRow?: (b: number, mel: Image) => void,
  ): HostTensor | null {
    return drainSteps(this.decodeSteps(z, taps, onRow));
  }

  /**
   * decode as a step generator: one yield after every decoder block of every row (src/steps.ts). On the device path
   * each row stays on the device through the decoder and its mel (and any tapped image) is read back once.
   */
  *decodeSteps(
    z: HostTensor,
    taps?: { postQuant?: (b: number, x: Image) => void; mid?: (b: number, h: Image) => void },
    onRow?: (b: number, mel: Image) => void,
  ): Generator<Step, HostTensor | null, void> {
    const rows: Image[] = [];
    yield* this.decodeImagesSteps(z, devicePath(), function* (b, mel, tapped) {
      const host = yield* hostImageSteps(mel, 'vae.decode mel');
      if (tapped.postQuant && taps?.postQuant) taps.postQuant(b, yield* hostImageSteps(tapped.postQuant, 'vae.decode post_quant'));
      if (tapped.mid && taps?.mid) taps.mid(b, yield* hostImageSteps(tapped.mid, 'vae.decode mid'));
      if (onRow) onRow(b, host); else rows.push(host);
    }, !!taps);
    if (onRow) return null;
    const r = imagesToNCHW(rows);
    return hostF32(r.shape, r.data);
  }

  /**
   * decode_first_stage per row, each row's mel handed to `row` (a step generator, run before the next row) as a host
   * image or, with `device`, a device image that `row` must not keep (it is freed after it returns); `tap`: hand it
   * the post_quant and mid images of the row too.
   */
  *decodeImagesSteps(
    z: HostTensor, device: boolean,
    row: (b: number, mel: AnyImage, tapped: { postQuant?: AnyImage; mid?: AnyImage }) => Generator<Step, void, void>, tap = false,
  ): Generator<Step, void, void> {
    const [B, e, T, W] = z.shape as [number, number, number, number];
    if (z.shape.length !== 4 || e !== this.cfg.embed_dim) throw new Error(`vae.decode: z must be (B, ${this.cfg.embed_dim}, T, W), got ${shapeStr(z.shape)}`);
    const dec = this.decoder;
    const inv = Math.fround(1.0 / this.scaleFactor);
    const zf = toFloat32(z);
    for (let b = 0; b < B; b++) {
      const img = imageFromNCHW(zf, [B, e, T, W], b);
      for (let i = 0; i < img.data.length; i++) img.data[i] = Math.fround(inv * img.data[i]!);
      const held: AnyImage[] = [];
      const keep = (x: AnyImage): AnyImage => { const k = onDevice(x) ? cloneImage(x) : x; held.push(k); return k; };
      try {
        const zin = device ? deviceImage(img) : img;
        held.push(zin);
        const pq = conv1x1(zin, this.postQuantConv!, this.tile);
        held.push(pq);
        let mid: AnyImage | undefined;
        const mel = yield* dec.applySteps(pq, this.tile, tap ? { mid: (h) => { mid = keep(h); } } : undefined);
        held.push(mel);
        yield* row(b, mel, tap ? { postQuant: pq, mid } : {});
      } finally {
        for (const x of held) disposeImage(x);
      }
    }
  }

  dispose(): void {
    this.enc?.dispose(); this.dec?.dispose(); this.quantConv?.dispose(); this.postQuantConv?.dispose();
    this.enc = this.dec = null; this.quantConv = this.postQuantConv = null;
  }
}

/** (B, C, H, W) host tensor of images (NCHW) */
export function imagesToHost(imgs: Image[]): HostTensor {
  const r = imagesToNCHW(imgs);
  return { dtype: 'float32', shape: r.shape, data: r.data };
}
