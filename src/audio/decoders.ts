/**
 * The compressed formats' decoders behind one interface (ChunkDecoder, src/audio/decoded_source.ts), from the
 * wasm-audio-decoders family (pure JS + inlined wasm, nothing native, nothing downloaded):
 *   FLAC        @wasm-audio-decoders/flac     lossless (≤ 24-bit): the stored integers / 2^(bits−1), as WAV (flacToWavScale)
 *   MP3         mpg123-decoder                gapless on: the encoder delay and padding a LAME/Xing header states are
 *                                             removed by mpg123 (without that header they stay in)
 *   Ogg Vorbis  @wasm-audio-decoders/ogg-vorbis
 *   Opus        ogg-opus-decoder              always 48 kHz output; the header's pre-skip is removed by the library
 * Samples are float32 as the libraries give them. What we rely on beyond that: a decode call copies its output
 * (the arrays stay valid after the next call) and accepts the file split at any byte.
 */
import type { ChunkDecoder, DecodedChunk, DecoderKind } from './decoded_source.js';
import { crc16, crc8 } from './flac_bits.js';

interface LibDecoder {
  ready: Promise<void>;
  decode(bytes: Uint8Array): DecodedChunk | Promise<DecodedChunk>;
  flush?: () => Promise<DecodedChunk>;
  free(): void;
}

// The libraries are imported when a file of their format is first opened (ogg-opus-decoder alone adds ≈ 0.2 s
// of start-up to every command otherwise).
function kind(format: string, make: () => Promise<LibDecoder>, post: (r: DecodedChunk) => DecodedChunk = (r) => r,
  trailer?: Uint8Array): DecoderKind {
  return {
    format,
    async create(): Promise<ChunkDecoder> {
      const d = await make();
      await d.ready;
      return {
        decode: async (bytes) => post(await d.decode(bytes)),
        flush: async () => {
          if (!trailer) return d.flush ? post(await d.flush()) : null;
          const a = post(await d.decode(trailer));
          const b = d.flush ? post(await d.flush()) : null;
          return b && b.samplesDecoded ? joinChunks(a, b) : a;
        },
        free: () => d.free(),
      };
    },
  };
}

function joinChunks(a: DecodedChunk, b: DecodedChunk): DecodedChunk {
  if (!a.samplesDecoded) return b;
  const channelData = a.channelData.map((c, i) => {
    const o = new Float32Array(c.length + b.channelData[i]!.length);
    o.set(c); o.set(b.channelData[i]!, c.length);
    return o;
  });
  return { ...a, channelData, samplesDecoded: a.samplesDecoded + b.samplesDecoded };
}

/**
 * Fed after a FLAC file's last byte: codec-parser (inside @wasm-audio-decoders/flac) finds the end of a frame by
 * the next frame's header, and at the end of the stream it drops the last frame when that is 13 bytes or shorter or
 * holds a false frame sync (0xFF 0xF8/0xF9) near its end (measured on 2026-12-04 with codec-parser 2.5.0: 177 of
 * 4800 synthetic streams of our encoder, 0 of 150 `flac`-made files of a noisy tone; `flac -t` decodes them all). This trailer is a valid frame header
 * (4096 samples, 44.1 kHz, stereo, 16-bit, frame 0, CRC-8) and 18 bytes with a CRC-16 made wrong on purpose: the
 * real last frame is ended by it, and the trailer itself, failing its CRC-16, is never decoded.
 */
const FLAC_TRAILER: Uint8Array = (() => {
  const t = new Uint8Array(24);
  t.set([0xff, 0xf8, 0xc9, 0x18, 0x00]);
  t[5] = crc8(t.subarray(0, 5));
  const c = crc16(t.subarray(0, 22));
  t[22] = (c >> 8) ^ 0xff; // the wrong CRC-16
  t[23] = c & 0xff;
  return t;
})();

/**
 * The FLAC decoder scales a b-bit integer v to v / (2^(b−1) − 1) in float32; round(x · (2^(b−1) − 1)) recovers v
 * exactly for b ≤ 24 (the float32 error is < 0.5 of an integer step there), and v / 2^(b−1) is then what the WAV
 * reader gives for the same integers (torchaudio's scaling) — so a FLAC decodes to exactly its WAV's samples.
 */
function flacToWavScale(r: DecodedChunk & { bitDepth?: number }): DecodedChunk {
  const bits = r.bitDepth ?? 0;
  if (r.samplesDecoded === 0) return r;
  if (!(bits >= 4 && bits <= 24)) throw new Error(`FLAC decoder returned ${bits}-bit samples (supported: 4 … 24 bits)`);
  const full = 2 ** (bits - 1), lib = full - 1;
  for (const c of r.channelData) for (let i = 0; i < c.length; i++) c[i] = Math.round(c[i]! * lib) / full;
  return r;
}

/** FLAC sample sizes the decoder reads (it returns no samples for 32-bit FLAC). */
export const FLAC_MAX_BITS = 24;

export const FLAC = kind('FLAC', async () => new (await import('@wasm-audio-decoders/flac')).FLACDecoder(), flacToWavScale, FLAC_TRAILER);
const mpg123 = async (): Promise<LibDecoder> => new (await import('mpg123-decoder')).MPEGDecoder({ enableGapless: true });
export const MP3 = kind('MP3', mpg123);
/** mpg123-decoder returns two (equal) channels for a mono MP3: keep one, as the file says. */
export const MP3_MONO = kind('MP3', mpg123, (r) => ({ ...r, channelData: r.channelData.slice(0, 1) }));
export const OGG_VORBIS = kind('Ogg Vorbis', async () => new (await import('@wasm-audio-decoders/ogg-vorbis')).OggVorbisDecoder());
export const OPUS = kind('Opus', async () => new (await import('ogg-opus-decoder')).OggOpusDecoder());

export interface FlacStreamInfo { sampleRate: number; channels: number; bitsPerSample: number; totalSamples: number }

/**
 * The STREAMINFO block that follows "fLaC" (FLAC format spec: 4-byte magic, 4-byte metadata block header, then
 * min/max block size (2+2), min/max frame size (3+3), rate 20 bits, channels−1 3 bits, bits−1 5 bits, total
 * samples 36 bits). `head` starts at "fLaC" and holds ≥ 26 bytes. totalSamples 0 means "not stated".
 */
export function parseFlacStreamInfo(head: Uint8Array, name: string): FlacStreamInfo {
  if (head.length < 26 || (head[4]! & 0x7f) !== 0) throw new Error(`${name}: FLAC file without a STREAMINFO block (truncated?)`);
  const b = (i: number): number => head[8 + i]!;
  const sampleRate = (b(10) << 12) | (b(11) << 4) | (b(12) >> 4);
  const channels = ((b(12) >> 1) & 0x7) + 1;
  const bitsPerSample = (((b(12) & 1) << 4) | (b(13) >> 4)) + 1;
  const totalSamples = (b(13) & 0x0f) * 2 ** 32 + ((b(14) << 24) >>> 0) + (b(15) << 16) + (b(16) << 8) + b(17);
  return { sampleRate, channels, bitsPerSample, totalSamples };
}
