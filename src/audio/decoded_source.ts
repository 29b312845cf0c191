/**
 * A compressed audio file (FLAC, MP3, Ogg Vorbis, Opus) as a streaming AudioSource: the file is fed to a decoder
 * (src/audio/decoders.ts) in chunks read at increasing positions (fed FEED_BYTES at a time), and only the decoded
 * frames that the current read range needs are kept (memory: one read range plus what one feed decodes to, whatever
 * the song's length).
 *
 * Access pattern (what src/audio/source.ts documents for the streamed encode): a read at or after the oldest frame
 * still held is served by decoding forward; a read before it restarts the decode from the start of the file. So the
 * encode's two passes cost two decodes (plus one counting pass at open when the format does not state its length
 * exactly, and one partial restart for the loop padding of the last window).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { checkRange, checkSampleRate, type AudioSource } from './source.js';

/** What one decode call returns (the shape of the @wasm-audio-decoders family's results). */
export interface DecodedChunk {
  channelData: Float32Array[];
  samplesDecoded: number;
  sampleRate: number;
  errors: Array<{ message: string; frameNumber?: number }>;
}

/** A decoder instance behind the common interface: bytes in (any chunking), planar float32 frames out. */
export interface ChunkDecoder {
  decode(bytes: Uint8Array): Promise<DecodedChunk>;
  /** frames still held at the end of the input (decoders that buffer a frame) */
  flush(): Promise<DecodedChunk | null>;
  free(): void;
}

export interface DecoderKind {
  /** 'FLAC', 'MP3', 'Ogg Vorbis', 'Opus' (for messages) */
  readonly format: string;
  create(): Promise<ChunkDecoder>;
}

/** Bytes per positional read of the file. */
export const DEFAULT_CHUNK_BYTES = 256 * 1024;
/**
 * Bytes per decode call (a slice of the chunk read): what one call returns is then bounded whatever the bitrate
 * (2 KiB: ≈ 0.13 s of a 128 kbps MP3, ≈ 2.7 s of a 6 kbps Opus).
 */
export const FEED_BYTES = 2048;

export class AudioDecodeError extends Error {}

export interface DecodedSourceOptions {
  /** bytes per positional read (default DEFAULT_CHUNK_BYTES; tests use small ones) */
  chunkBytes?: number;
  /** where the audio data starts in the file (after an ID3v2 tag, say) */
  offset?: number;
  /** frames, rate and channels as the file states them exactly; without it a counting pass decodes the file once */
  stated?: { frames: number; sampleRate: number; channels: number };
}

interface Block { start: number; data: Float32Array[] }

/** Decoding state of one pass through the file. */
interface Pass {
  decoder: ChunkDecoder;
  /** next byte of the file to read */
  filePos: number;
  /** the last chunk read, and how much of it has been fed */
  buf: Uint8Array;
  bufPos: number;
  decoded: number;
  ended: boolean;
}

const newPass = (decoder: ChunkDecoder, offset: number): Pass => ({ decoder, filePos: offset, buf: new Uint8Array(0), bufPos: 0, decoded: 0, ended: false });

export class DecodedSource implements AudioSource {
  readonly sampleRate: number;
  readonly channels: number;
  readonly frames: number;
  /**
   * Instrumentation: the most decoded frames (per channel) held at once, the most one decode call returned, and
   * the decodes started from the file's start (the counting pass at open not included).
   */
  readonly stats = { maxHeldFrames: 0, maxChunkFrames: 0, passes: 0 };
  private fh: FileHandle | null;
  private pass: Pass | null = null;
  private blocks: Block[] = [];

  /** 'FLAC', 'MP3', … (openAudioSource may set a longer description) */
  readonly format: string;

  private constructor(
    readonly name: string, private readonly kind: DecoderKind, fh: FileHandle,
    private readonly fileSize: number, private readonly opts: Required<Pick<DecodedSourceOptions, 'chunkBytes' | 'offset'>>,
    shape: { frames: number; sampleRate: number; channels: number },
  ) {
    this.fh = fh;
    this.format = kind.format;
    this.frames = shape.frames;
    this.sampleRate = shape.sampleRate;
    this.channels = shape.channels;
  }

  /** Opens `path` as `kind`; counts its frames with one decode pass unless `opts.stated` gives them. */
  static async open(path: string, kind: DecoderKind, opts: DecodedSourceOptions = {}): Promise<DecodedSource> {
    const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
      throw new AudioDecodeError(`${path}: cannot read (${e.code ?? e.message})`);
    });
    try {
      const size = (await fh.stat()).size;
      const o = { chunkBytes: opts.chunkBytes ?? DEFAULT_CHUNK_BYTES, offset: opts.offset ?? 0 };
      const shape = opts.stated ?? await countFrames(fh, size, path, kind, o);
      checkSampleRate(shape.sampleRate, path);
      if (shape.channels < 1) throw new AudioDecodeError(`${path}: ${kind.format} stream without channels`);
      return new DecodedSource(path, kind, fh, size, o, shape);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  async read(start: number, count: number): Promise<Float32Array[]> {
    checkRange(this, start, count);
    if (!this.fh) throw new AudioDecodeError(`${this.name}: read after close()`);
    const end = start + count;
    if (!this.pass || start < (this.blocks[0]?.start ?? this.pass.decoded)) await this.restart();
    this.dropBefore(start);
    while (this.pass!.decoded < end) {
      const got = await this.next(this.pass!);
      if (!got) {
        throw new AudioDecodeError(`${this.name}: the ${this.kind.format} data ends at frame ${this.pass!.decoded}, but ${this.frames} were expected (file changed or truncated?)`);
      }
      if (got.start + got.data[0]!.length > start) this.blocks.push(got);
      this.note();
    }
    const out = Array.from({ length: this.channels }, () => new Float32Array(count));
    for (const b of this.blocks) {
      const n = b.data[0]!.length;
      const a = Math.max(start, b.start), e = Math.min(end, b.start + n);
      if (a < e) b.data.forEach((ch, c) => out[c]!.set(ch.subarray(a - b.start, e - b.start), a - start));
    }
    return out;
  }

  async close(): Promise<void> {
    this.pass?.decoder.free();
    this.pass = null;
    this.blocks = [];
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }

  private note(): void {
    const held = this.blocks.reduce((s, b) => s + b.data[0]!.length, 0);
    if (held > this.stats.maxHeldFrames) this.stats.maxHeldFrames = held;
  }

  private dropBefore(frame: number): void {
    while (this.blocks.length && this.blocks[0]!.start + this.blocks[0]!.data[0]!.length <= frame) this.blocks.shift();
  }

  private async restart(): Promise<void> {
    this.pass?.decoder.free();
    this.blocks = [];
    this.pass = newPass(await this.kind.create(), this.opts.offset);
    this.stats.passes++;
  }

  /** The next decoded block of the pass (null at the end of the data), checked against the stream's shape. */
  private async next(p: Pass): Promise<Block | null> {
    for (;;) {
      const r = await nextChunk(p, this.fh!, this.fileSize, this.opts.chunkBytes, this.name, this.kind.format);
      if (!r) return null;
      if (r.sampleRate !== this.sampleRate || r.channelData.length !== this.channels) {
        throw new AudioDecodeError(`${this.name}: the ${this.kind.format} stream changes to ${r.sampleRate} Hz × ${r.channelData.length} channels at frame ${p.decoded} (it starts at ${this.sampleRate} Hz × ${this.channels}); chained or changing streams are not supported`);
      }
      this.stats.maxChunkFrames = Math.max(this.stats.maxChunkFrames, r.samplesDecoded);
      const start = p.decoded;
      // never more than `frames` (the length stated up front is what the encode was promised)
      const n = Math.min(r.samplesDecoded, this.frames - start);
      p.decoded += r.samplesDecoded;
      if (n > 0) return { start, data: r.channelData.map((c) => c.subarray(0, n)) };
    }
  }
}

/** Feeds the next slice of the file (or flushes at its end); null once the decoder has nothing more. */
async function nextChunk(p: Pass, fh: FileHandle, size: number, chunkBytes: number, name: string, format: string): Promise<DecodedChunk | null> {
  for (;;) {
    if (p.ended) return null;
    let r: DecodedChunk | null;
    if (p.bufPos < p.buf.length) {
      const slice = p.buf.subarray(p.bufPos, p.bufPos + FEED_BYTES);
      p.bufPos += slice.length;
      r = await guarded(() => p.decoder.decode(slice), name, format);
    } else if (p.filePos < size) {
      const len = Math.min(chunkBytes, size - p.filePos);
      const buf = new Uint8Array(len);
      let got = 0;
      while (got < len) {
        const { bytesRead } = await fh.read(buf, got, len - got, p.filePos + got).catch((e: NodeJS.ErrnoException) => {
          throw new AudioDecodeError(`${name}: cannot read (${e.code ?? e.message})`);
        });
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got === 0) throw new AudioDecodeError(`${name}: the file ended at byte ${p.filePos} (shortened while being read?)`);
      p.filePos += got;
      p.buf = buf.subarray(0, got);
      p.bufPos = 0;
      continue;
    } else {
      p.ended = true;
      r = await guarded(() => p.decoder.flush(), name, format);
    }
    if (r?.errors.length) {
      const e = r.errors[0]!;
      throw new AudioDecodeError(`${name}: corrupt ${format} data (${e.message}${e.frameNumber !== undefined ? ` at frame ${e.frameNumber}` : ''})`);
    }
    if (r && r.samplesDecoded > 0) return r;
  }
}

/** A decoder call whose failure names the file. */
async function guarded<T>(f: () => Promise<T>, name: string, format: string): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw new AudioDecodeError(`${name}: cannot decode the ${format} data (${(e as Error).message ?? e})`);
  }
}

/** One decode pass that keeps nothing: the exact length, rate and channel count as the decoder gives them. */
async function countFrames(
  fh: FileHandle, size: number, name: string, kind: DecoderKind, o: { chunkBytes: number; offset: number },
): Promise<{ frames: number; sampleRate: number; channels: number }> {
  const p = newPass(await kind.create(), o.offset);
  let shape: { sampleRate: number; channels: number } | null = null;
  try {
    for (let r; (r = await nextChunk(p, fh, size, o.chunkBytes, name, kind.format));) {
      if (!shape) shape = { sampleRate: r.sampleRate, channels: r.channelData.length };
      else if (r.sampleRate !== shape.sampleRate || r.channelData.length !== shape.channels) {
        throw new AudioDecodeError(`${name}: the ${kind.format} stream changes to ${r.sampleRate} Hz × ${r.channelData.length} channels at frame ${p.decoded} (it starts at ${shape.sampleRate} Hz × ${shape.channels}); chained or changing streams are not supported`);
      }
      p.decoded += r.samplesDecoded;
    }
  } finally {
    p.decoder.free();
  }
  if (!shape) throw new AudioDecodeError(`${name}: no audio decoded from the ${kind.format} data (empty or truncated file?)`);
  return { frames: p.decoded, ...shape };
}
