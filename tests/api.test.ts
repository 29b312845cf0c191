import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';

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
