import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';
import { TINY } from './helpers/tiny_codec.js';

describe('package root exports the documented API', () => {
  it('codec, I/O, codes file, backend, noise, samplers, conversion', () => {
    for (const name of ['MuCodec', 'readWav', 'writeWav', 'readCodesFile', 'writeCodesFile', 'initBackend', 'SeededNoise',
      'ReplayNoise', 'registerSolver', 'solveOde', 'solveCfm', 'uniformSchedule', 'convert', 'loadTorchCheckpoint',
      'fetchWeights', 'runParity', 'planCode2Sound'] as const) {
      expect(typeof (api as Record<string, unknown>)[name], name).toBe('function');
    }
    expect(api.solverNames()).toEqual(expect.arrayContaining(['euler', 'heun', 'midpoint', 'rk4']));
    expect(api.RELEASED_CHECKPOINTS.map((c) => c.file)).toEqual(['mucodec.pt', 'muq.pt', 'audioldm_48k.pth']);
  });
});

describe('MuCodec.load({ threads })', () => {
  it('takes the running thread count, and names the problem when another one is asked once wasm runs', async () => {
    await api.initBackend('wasm');
    const running = api.wasmThreads();
    expect(running).toBeGreaterThanOrEqual(1);
    const c = await api.MuCodec.load({ weightsDir: TINY, threads: running! });
    c.dispose();
    await expect(api.MuCodec.load({ weightsDir: TINY, threads: running! + 1 })).rejects.toThrow(/already runs with \d+ thread/);
    expect(() => api.parseThreads('0')).toThrow(/1\.\.64/);
  });
});
