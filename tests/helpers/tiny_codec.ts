/**
 * Shared set-up of the tests that run the whole codec on the tiny model in weights/tiny (every real block, random
 * weights): paths, one MuCodec loaded before the file's tests and disposed after them, and a finiteness check.
 */
import { afterAll, beforeAll } from 'vitest';
import { join } from 'node:path';
import { initBackend } from '../../src/backend.js';
import { MuCodec } from '../../src/codec.js';

export const ROOT = join(import.meta.dirname, '..', '..');
export const TINY = join(ROOT, 'weights', 'tiny');
export const TEST_WAV = join(ROOT, 'test_wav', 'test.wav');

/** Registers beforeAll/afterAll hooks; `codec` is the loaded tiny model inside the tests. */
export function useTinyCodec(): { readonly codec: MuCodec } {
  let codec: MuCodec | null = null;
  beforeAll(async () => {
    await initBackend();
    codec = await MuCodec.load({ weightsDir: TINY });
  });
  afterAll(() => { codec?.dispose(); });
  return {
    get codec(): MuCodec {
      if (!codec) throw new Error('useTinyCodec: the codec is loaded in beforeAll');
      return codec;
    },
  };
}

export function allFinite(chs: Float32Array[]): boolean {
  return chs.every((c) => c.every((v) => Number.isFinite(v)));
}
