/**
 * Argument checks of the MuCodec API (encode / decode / reconstruct), run before any work starts: codes are
 * checked as given (never converted first: 1.5, NaN, 2^32 + 5 or "7" are refused, not rounded or wrapped), and the
 * options as the CLI checks its flags (src/commands/decode.ts). Every message names the argument and its value.
 */
import type { Audio } from './audio/wav.js';
import type { CodesMeta } from './codesfile.js';
import { getSolver } from './sampler/solvers.js';
import { checkSchedule } from './sampler/schedule.js';

/** A value as it appears in a message: strings quoted, everything else as JavaScript prints it. */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'bigint') return `${v}n (a bigint)`;
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return `a ${(v as object).constructor?.name ?? 'object'}`;
  return String(v);
}

const INT_ARRAYS = [Int32Array, Uint32Array, Int16Array, Uint16Array, Int8Array, Uint8Array, Uint8ClampedArray];

/**
 * Codes as a user passes them to decode: an Int32Array (or another integer typed array) or an array of integers,
 * each in [0, codebookSize). Returns them as a new Int32Array; throws naming the first bad index and value.
 */
export function checkCodes(codes: unknown, codebookSize: number, what = 'decode'): Int32Array {
  const isIntArray = INT_ARRAYS.some((T) => codes instanceof T);
  if (!isIntArray && !Array.isArray(codes)) {
    throw new Error(`${what}: codes must be an Int32Array or an array of integers, got ${describeValue(codes)}`);
  }
  const src = codes as ArrayLike<unknown>;
  if (src.length === 0) throw new Error(`${what}: no codes`);
  const out = new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (typeof c !== 'number') throw new Error(`${what}: code ${i} is ${describeValue(c)}, not a number`);
    if (!Number.isInteger(c)) throw new Error(`${what}: code ${i} is ${c}, not an integer`);
    if (c < 0 || c >= codebookSize) throw new Error(`${what}: code ${i} is ${c}, outside the codebook (0 … ${codebookSize - 1})`);
    out[i] = c;
  }
  return out;
}

function fail(what: string, key: string, v: unknown, want: string): never {
  throw new Error(`${what}: option ${key} is ${describeValue(v)}, expected ${want}`);
}

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
}

/** The callback and signal options every call takes. */
function checkCommon(o: Record<string, unknown>, what: string, callbacks: string[]): void {
  for (const k of callbacks) if (o[k] !== undefined && typeof o[k] !== 'function') fail(what, k, o[k], 'a function');
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) fail(what, 'signal', o.signal, 'an AbortSignal');
}

/** An options argument as a record (undefined when left out), with the checks every method shares. */
function optionsObject(opts: unknown, what: string): Record<string, unknown> | undefined {
  if (opts === undefined) return undefined;
  if (typeof opts !== 'object' || opts === null) throw new Error(`${what}: options must be an object, got ${describeValue(opts)}`);
  const o = opts as Record<string, unknown>;
  checkCommon(o, what, ['onProgress', 'onEncodeProgress']);
  return o;
}

/** Encode options (batchSize, onProgress, signal). */
export function checkEncodeOptions(opts: unknown, what = 'encode'): void {
  const o = optionsObject(opts, what);
  if (!o) return;
  if (o.batchSize !== undefined && !isPositiveInt(o.batchSize)) fail(what, 'batchSize', o.batchSize, 'a positive integer (windows per MuQ batch)');
}

/** DiT window length in seconds (1024 codes at 25 Hz): the longest window `duration` can describe. */
const MAX_DURATION = 40.96;

/**
 * Decode options (also reconstruct's). `steps` left out or explicitly undefined is the method's default, so
 * the caller resolves it (`?? 20` / `?? 50`), never a spread that lets `undefined` override it.
 */
export function checkDecodeOptions(opts: unknown, what = 'decode'): void {
  const o = optionsObject(opts, what);
  if (!o) return;
  if (o.steps !== undefined && !isPositiveInt(o.steps)) fail(what, 'steps', o.steps, 'a positive integer');
  const g = o.guidanceScale;
  if (g !== undefined && !(typeof g === 'number' && Number.isFinite(g) && g >= 0)) fail(what, 'guidanceScale', g, 'a finite number ≥ 0');
  const s = o.seed;
  if (s !== undefined && !(typeof s === 'number' && Number.isInteger(s) && s >= 0 && s <= 0xffffffff)) {
    fail(what, 'seed', s, 'an integer from 0 to 4294967295');
  }
  if (o.noise !== undefined) {
    const n = o.noise as { randn?: unknown } | null;
    if (typeof n !== 'object' || n === null || typeof n.randn !== 'function') fail(what, 'noise', o.noise, 'a NoiseSource (an object with randn)');
    if (s !== undefined) throw new Error(`${what}: give either seed or noise, not both (the noise source replaces the seeded one)`);
  }
  if (o.sampler !== undefined) {
    const sp = o.sampler as { step?: unknown } | null;
    if (typeof sp === 'string') {
      try { getSolver(sp); } catch (e) { throw new Error(`${what}: option sampler: ${(e as Error).message}`); }
    } else if (typeof sp !== 'object' || sp === null || typeof sp.step !== 'function') {
      fail(what, 'sampler', o.sampler, 'a sampler name or a Solver (an object with step)');
    }
  }
  if (o.tSpan !== undefined) checkTSpan(o.tSpan, what);
  const d = o.duration;
  if (d !== undefined && !(typeof d === 'number' && Number.isFinite(d) && d * 48000 >= 4 && d <= MAX_DURATION)) {
    fail(what, 'duration', d, `a number of seconds in (0, ${MAX_DURATION}] (the DiT window is ${MAX_DURATION} s)`);
  }
  if (o.prompt !== undefined) checkAudio(o.prompt, `${what}: prompt`);
  if (o.batchSize !== undefined && !isPositiveInt(o.batchSize)) fail(what, 'batchSize', o.batchSize, 'a positive integer (windows per MuQ batch)');
}

/** A time schedule: finite numbers, strictly increasing, from 0 (noise) to 1 (data). */
function checkTSpan(t: unknown, what: string): void {
  const ok = Array.isArray(t) || t instanceof Float32Array || t instanceof Float64Array;
  if (!ok) fail(what, 'tSpan', t, 'an array of times from 0 to 1');
  const a = t as ArrayLike<unknown>;
  for (let i = 0; i < a.length; i++) {
    if (typeof a[i] !== 'number' || !Number.isFinite(a[i])) throw new Error(`${what}: option tSpan: point ${i} is ${describeValue(a[i])}, not a finite number`);
  }
  try {
    checkSchedule(a as ArrayLike<number>);
  } catch (e) {
    throw new Error(`${what}: option tSpan: ${(e as Error).message}`);
  }
  if (a[0] !== 0 || a[a.length - 1] !== 1) throw new Error(`${what}: option tSpan must run from 0 (noise) to 1 (data), got ${String(a[0])} … ${String(a[a.length - 1])}`);
}

/** Audio as the API takes it: { sampleRate (integer > 0), channels: 1 or 2 Float32Arrays of one non-zero length }. */
export function checkAudio(audio: unknown, what = 'encode'): asserts audio is Audio {
  if (typeof audio !== 'object' || audio === null) throw new Error(`${what}: audio must be { sampleRate, channels }, got ${describeValue(audio)}`);
  const { sampleRate, channels } = audio as { sampleRate?: unknown; channels?: unknown };
  if (!(typeof sampleRate === 'number' && Number.isInteger(sampleRate) && sampleRate > 0)) {
    throw new Error(`${what}: sampleRate is ${describeValue(sampleRate)}, expected a positive integer (Hz)`);
  }
  if (!Array.isArray(channels) || channels.length < 1 || channels.length > 2) {
    throw new Error(`${what}: channels must be an array of 1 (mono) or 2 (stereo) Float32Arrays, got ${Array.isArray(channels) ? `${channels.length} channels` : describeValue(channels)}`);
  }
  channels.forEach((c: unknown, i) => {
    if (!(c instanceof Float32Array)) throw new Error(`${what}: channel ${i} is ${describeValue(c)}, expected a Float32Array`);
  });
  const n = (channels[0] as Float32Array).length;
  if (n === 0) throw new Error(`${what}: the audio is empty`);
  if ((channels as Float32Array[]).some((c) => c.length !== n)) throw new Error(`${what}: channels have different lengths (${(channels as Float32Array[]).map((c) => c.length).join(' vs ')})`);
}

/** What the model needs of a codes file's header (the model's configuration). */
export interface CodesModel {
  frameRate: number;
  codebookSize: number;
  nCodebooks: number;
  muqLayer: number;
}

/**
 * A codes file's header against the model that is to decode it: frame rate, codebook size and count, and the MuQ
 * layer the codes were taken from must all be the model's. Throws naming the field, the file's value and the model's.
 */
export function checkCodesMetaAgainst(meta: CodesMeta, model: CodesModel, source = '.mcodes', modelName = 'the model'): void {
  const fields: Array<[keyof CodesModel, string]> = [
    ['frameRate', 'frame rate (codes per second)'], ['codebookSize', 'codebook size'],
    ['nCodebooks', 'codebook count'], ['muqLayer', 'MuQ layer (layer_num)'],
  ];
  for (const [k, label] of fields) {
    if (meta[k] !== model[k]) throw new Error(`${source}: ${label} is ${String(meta[k])} in the file, but ${modelName} has ${model[k]}: these codes cannot be decoded with this model`);
  }
}
