/**
 * Opening input audio of any supported format, chosen by the file's content (its first bytes), never by its name:
 *   "RIFF" / "RIFX" / "RF64" / "BW64"   WAV (src/audio/wav.ts)
 *   "fLaC"                              FLAC (STREAMINFO gives the length when it states it)
 *   "OggS" + first packet "\x01vorbis"  Ogg Vorbis;  + "OpusHead": Opus
 *   an ID3v2 tag, or an MPEG audio frame sync (layer I/II/III)   MP3 (an ID3v2 tag before "fLaC" is skipped too)
 * Anything else is refused with an error naming the file and what it starts with.
 */
import { open } from 'node:fs/promises';
import { DecodedSource, type DecodedSourceOptions } from './decoded_source.js';
import { FLAC, FLAC_MAX_BITS, MP3, MP3_MONO, OGG_VORBIS, OPUS, parseFlacStreamInfo } from './decoders.js';
import { readAllFrames, type AudioSource } from './source.js';
import { WavSource, type Audio } from './wav.js';

/** An opened input: the source plus a one-line description of its format (e.g. "FLAC 16-bit", "WAV pcm 16-bit"). */
export type OpenedAudio = AudioSource & { readonly format: string };

export const SUPPORTED_FORMATS = 'WAV, FLAC, MP3, Ogg Vorbis, Opus';

/** Bytes read to detect the format (an Ogg page header with its segment table and the start of its first packet). */
const SNIFF_BYTES = 512;

export type Detected =
  | { format: 'wav' }
  | { format: 'flac' | 'mp3' | 'vorbis' | 'opus'; offset: number }
  | { format: 'unknown'; found: string };

const ascii = (b: Uint8Array, at: number, n: number): string => String.fromCharCode(...b.subarray(at, at + n));

function describeStart(b: Uint8Array): string {
  if (b.length === 0) return 'the file is empty';
  const s = ascii(b, 0, 4);
  if (b.length >= 4 && /^[\x20-\x7e]{4}$/.test(s)) return `starts with "${s}"`;
  return `starts with bytes ${[...b.subarray(0, 4)].map((x) => x.toString(16).padStart(2, '0')).join(' ')}`;
}

/** Names of formats we recognise but do not read (for a clearer refusal). */
function knownOther(b: Uint8Array): string | null {
  const s = ascii(b, 0, 4);
  if (ascii(b, 4, 4) === 'ftyp') return 'MP4/M4A (AAC or ALAC)';
  if (s === 'FORM') return 'AIFF';
  if (s === '.snd') return 'Sun AU';
  if (s === 'MThd') return 'MIDI';
  if (s === 'wvpk') return 'WavPack';
  if (s === 'MAC ') return "Monkey's Audio";
  if (b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3) return 'Matroska/WebM';
  if (b[0] === 0x30 && b[1] === 0x26 && b[2] === 0xb2 && b[3] === 0x75) return 'ASF/WMA';
  if (b[0] === 0xff && (b[1]! & 0xf6) === 0xf0) return 'AAC (ADTS)';
  return null;
}

/** An MPEG-1/2/2.5 audio frame header at `at` (11-bit sync, valid version, layer, bitrate and rate indices). */
function isMpegFrame(b: Uint8Array, at: number): boolean {
  if (at + 4 > b.length || b[at] !== 0xff || (b[at + 1]! & 0xe0) !== 0xe0) return false;
  const version = (b[at + 1]! >> 3) & 3, layer = (b[at + 1]! >> 1) & 3;
  const bitrate = b[at + 2]! >> 4, rate = (b[at + 2]! >> 2) & 3;
  return version !== 1 && layer !== 0 && bitrate !== 15 && rate !== 3;
}

/** The format of a file from its first bytes (`head`; an ID3v2 tag's size is read from its own header). */
export function detectFormat(head: Uint8Array): Detected {
  const s = ascii(head, 0, 4);
  if (s === 'RIFF' || s === 'RIFX' || s === 'RF64' || s === 'BW64') return { format: 'wav' };
  if (s === 'fLaC') return { format: 'flac', offset: 0 };
  if (s === 'OggS' && head.length >= 27) {
    const segs = head[26]!;
    const pkt = 27 + segs;
    if (ascii(head, pkt, 7) === '\x01vorbis') return { format: 'vorbis', offset: 0 };
    if (ascii(head, pkt, 8) === 'OpusHead') return { format: 'opus', offset: 0 };
    const id = ascii(head, pkt, 8).replace(/[^\x20-\x7e]/g, '.');
    return { format: 'unknown', found: `an Ogg stream of another codec (first packet "${id}"; Ogg FLAC, Speex and Theora are not supported)` };
  }
  if (s.startsWith('ID3') && head.length >= 10) {
    // ID3v2: 10-byte header, syncsafe size (4 × 7 bits), +10 when a footer is present (flag bit 4)
    const size = ((head[6]! & 0x7f) << 21) | ((head[7]! & 0x7f) << 14) | ((head[8]! & 0x7f) << 7) | (head[9]! & 0x7f);
    const offset = 10 + size + (head[5]! & 0x10 ? 10 : 0);
    return { format: 'mp3', offset };
  }
  if (isMpegFrame(head, 0)) return { format: 'mp3', offset: 0 };
  const other = knownOther(head);
  return { format: 'unknown', found: other ? `${describeStart(head)}: ${other}` : describeStart(head) };
}

async function readHead(path: string, pos: number, len: number): Promise<Uint8Array> {
  const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new Error(`${path}: cannot read (${e.code ?? e.message})`);
  });
  try {
    if ((await fh.stat()).isDirectory()) throw new Error(`${path}: cannot read (EISDIR: it is a folder)`);
    const buf = new Uint8Array(len);
    const { bytesRead } = await fh.read(buf, 0, len, pos);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * Opens an audio file of any supported format as a streaming source (header errors, and for MP3/Ogg the counting
 * pass, before anything else). `opts` tunes the compressed formats' streaming (tests use small chunks).
 */
export async function openAudioSource(path: string, opts: Pick<DecodedSourceOptions, 'chunkBytes'> = {}): Promise<OpenedAudio> {
  const head = await readHead(path, 0, SNIFF_BYTES);
  let d = detectFormat(head);
  if (d.format === 'mp3' && d.offset > 0) {
    // after an ID3v2 tag: an MPEG frame (MP3) or, rarely, a FLAC stream
    const after = await readHead(path, d.offset, 4);
    if (ascii(after, 0, 4) === 'fLaC') d = { format: 'flac', offset: d.offset };
  }
  switch (d.format) {
    case 'wav': {
      const w = await WavSource.open(path);
      return Object.assign(w, { format: `WAV ${w.info.encoding} ${w.info.bitsPerSample}-bit` });
    }
    case 'flac': {
      const info = parseFlacStreamInfo(await readHead(path, d.offset, 42), path);
      if (info.bitsPerSample > FLAC_MAX_BITS) throw new Error(`${path}: ${info.bitsPerSample}-bit FLAC is not supported (up to ${FLAC_MAX_BITS} bits)`);
      const stated = info.totalSamples > 0 ? { frames: info.totalSamples, sampleRate: info.sampleRate, channels: info.channels } : undefined;
      const src = await DecodedSource.open(path, FLAC, { ...opts, offset: d.offset, stated });
      return Object.assign(src, { format: `FLAC ${info.bitsPerSample}-bit` });
    }
    case 'mp3': {
      // channel mode (bits 7–6 of the header's 4th byte) 3 = single channel
      const frame = d.offset > 0 ? await readHead(path, d.offset, 4) : head;
      const mono = isMpegFrame(frame, 0) && frame[3]! >> 6 === 3;
      return DecodedSource.open(path, mono ? MP3_MONO : MP3, { ...opts, offset: d.offset });
    }
    case 'vorbis': return DecodedSource.open(path, OGG_VORBIS, opts);
    case 'opus': return DecodedSource.open(path, OPUS, opts);
    default:
      throw new Error(`${path}: not a supported audio file (${d.found}); supported formats: ${SUPPORTED_FORMATS}`);
  }
}

/** Reads a whole audio file of any supported format (see openAudioSource). */
export async function readAudio(path: string): Promise<Audio> {
  const src = await openAudioSource(path);
  try {
    return { sampleRate: src.sampleRate, channels: await readAllFrames(src) };
  } finally {
    await src.close();
  }
}
