/**
 * The parity runner checks the whole case (issue 12 A): edited copies (in a temp folder) of real reference cases —
 * an extra recorded draw, an unread input, a changed or unknown config key, a changed scalar, a remapped
 * intermediate, an intermediate nobody produces — each FAIL with the reason in the message; the unmodified cases
 * PASS with their intermediates compared. The e2e stage takes a declared prompt (decode(codes, { prompt })).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../convert/safetensors.js';
import { initBackend } from '../src/backend.js';
import { loadCase, type CaseJson } from '../src/fixtures.js';
import { formatResult, registerStage, runCase, type CaseResult } from '../src/parity.js';
import '../src/stages/index.js';
import { fixtureDir } from './parity-helper.js';

const tmp = mkdtempSync(join(tmpdir(), 'mucodec-parity-runner-'));
let n = 0;

/** a copy of a reference case with case.json edited */
function edited(family: string, name: string, edit: (j: CaseJson) => void): string {
  const dir = join(tmp, `${n++}`, name);
  cpSync(fixtureDir(family, name), dir, { recursive: true });
  const j = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as CaseJson;
  edit(j);
  writeFileSync(join(dir, 'case.json'), JSON.stringify(j, null, 1));
  return dir;
}

async function run(dir: string): Promise<{ r: CaseResult; line: string }> {
  const r = await runCase(dir);
  return { r, line: formatResult(r) };
}

beforeAll(async () => { await initBackend(); });
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

describe('parity runner: the unmodified cases pass, intermediates compared', () => {
  it('audio.resample_44k1_48k: PASS, its kernel intermediate compared, every config key read or listed', async () => {
    const { r, line } = await run(fixtureDir('encoder', 'audio.resample_44k1_48k'));
    expect(r.pass, line).toBe(true);
    expect(r.problems).toEqual([]);
    expect(r.comparisons.filter((x) => x.kind === 'intermediate').map((x) => x.name)).toEqual(['mid.kernel']);
    expect(line).toMatch(/^PASS audio\.resample audio\.resample_44k1_48k .* 1 intermediate compared/);
  });

  it('muq.conformer_layer: PASS with its 4 sub-block intermediates compared', async () => {
    const { r, line } = await run(fixtureDir('encoder', 'muq.conformer_layer'));
    expect(r.pass, line).toBe(true);
    expect(r.comparisons.filter((x) => x.kind === 'intermediate').map((x) => x.name)).toEqual(['mid.ffn1', 'mid.self_attn', 'mid.conv_module', 'mid.ffn2']);
    expect(line).toContain('4 intermediates compared');
  });

  it('rvq.quantize_tiny: PASS; the margin intermediate is listed as not producible, with its reason', async () => {
    const { r, line } = await run(fixtureDir('encoder', 'rvq.quantize_tiny'));
    expect(r.pass, line).toBe(true);
    expect(r.notProduced).toEqual(['per-frame top1-top2 score margin (float64, (B*T,))']);
    expect(line).toContain('0 intermediates compared (1 not producible)');
  });
});

describe('parity runner: edited cases fail, naming the field', () => {
  it('an extra recorded draw (never consumed) fails', async () => {
    const dir = edited('audio', 'vae.encode', (j) => { j.noise = [...j.noise!, 'noise.eps_1']; });
    const { r, line } = await run(dir);
    expect(r.pass, line).toBe(false);
    expect(line).toContain('noise: 1 of 3 recorded draws were never consumed');
    // every comparison still passes: the draws are the only reason
    expect(r.comparisons.every((x) => x.pass)).toBe(true);
  });

  it('a declared input the stage never reads fails', async () => {
    const dir = edited('encoder', 'audio.resample_44k1_48k', (j) => { j.inputs = { ...j.inputs, window: 'in.waveform' }; });
    const { r, line } = await run(dir);
    expect(r.pass).toBe(false);
    expect(r.problems).toEqual(['input "window" (in.waveform) was never read by the stage']);
    expect(line).toContain('UNUSED: input "window" (in.waveform) was never read');
  });

  it('a changed config key the stage honours fails (lowpass_filter_width changes the kernel and the output)', async () => {
    const dir = edited('encoder', 'audio.resample_44k1_48k', (j) => { j.config!.lowpass_filter_width = 8; delete j.config!.width; });
    const { r, line } = await run(dir);
    expect(r.pass, line).toBe(false);
    expect(r.comparisons.find((x) => x.name === 'out.resampled')!.pass).toBe(false);
    expect(r.comparisons.find((x) => x.name === 'mid.kernel')!.detail).toMatch(/shape/);
  });

  it('a changed derived config value fails naming it (width)', async () => {
    const dir = edited('encoder', 'audio.resample_44k1_48k', (j) => { j.config!.width = 9; });
    const { r, line } = await run(dir);
    expect(r.pass).toBe(false);
    expect(line).toContain('config.width = 9, but the stage computed 7');
  });

  it('muq.features honours its config: a changed normalisation mean fails on the output', async () => {
    const dir = edited('encoder', 'muq.features', (j) => { (j.config!.normalize as Record<string, number>).melspec_2048_mean = 7; });
    const { r, line } = await run(dir);
    expect(r.pass, line).toBe(false);
    expect(r.comparisons.find((x) => x.name === 'out.features')!.pass).toBe(false);
  });

  it('a setting supported only at the reference value fails with a clear error (hidden_act)', async () => {
    const dir = edited('encoder', 'muq.conformer_layer', (j) => { j.config!.hidden_act = 'gelu'; });
    const { r, line } = await run(dir);
    expect(r.pass).toBe(false);
    expect(line).toContain('config.hidden_act = "gelu" is not supported (only "swish")');
  });

  it('a config key no stage reads (and not listed as unused) fails naming it', async () => {
    const dir = edited('decoder', 'dit.block', (j) => { j.config!.qk_norm = 'rms'; });
    const { r, line } = await run(dir);
    expect(r.pass).toBe(false);
    expect(r.problems).toEqual(['config.qk_norm was never read by the stage (honour it, or list it as unused with the reason)']);
    expect(line).toContain('UNUSED: config.qk_norm');
  });

  it('a changed scalar fails: cfm.solve_euler n_timesteps checked against the time grid, guidance_scale honoured', async () => {
    const steps = await run(edited('decoder', 'cfm.solve_euler', (j) => { j.scalars!.n_timesteps = 5; }));
    expect(steps.r.pass).toBe(false);
    expect(steps.line).toContain('scalars.n_timesteps = 5, but the stage computed 4');
    const cfg = await run(edited('decoder', 'cfm.solve_euler', (j) => { j.scalars!.guidance_scale = 2; }));
    expect(cfg.r.pass, cfg.line).toBe(false);
    expect(cfg.r.comparisons.find((x) => x.name === 'out.x')!.pass).toBe(false);
  });

  it('a remapped intermediate (pointing at another layer\'s tensor) fails, naming the first intermediate off', async () => {
    const dir = edited('encoder', 'muq.conformer_layer', (j) => {
      const m = j.intermediates!;
      m['self_attn output (linear_out, before residual)'] = 'mid.conv_module';
    });
    const { r, line } = await run(dir);
    expect(r.pass).toBe(false);
    expect(line).toContain('first intermediate off: mid.conv_module');
    // the outputs still pass: only the remapped intermediate is wrong
    expect(r.comparisons.filter((x) => x.kind === 'output').every((x) => x.pass)).toBe(true);
  });

  it('an intermediate larger than the outputs (pre-tanh, peak 18 vs 1) gets a max_abs scaled by its peak, which still catches a remap', async () => {
    const ok = await run(fixtureDir('audio', 'hifigan.generate'));
    expect(ok.r.pass, ok.line).toBe(true);
    const ups4 = ok.r.comparisons.find((x) => x.name === 'mid.ups4')!;
    // its reference peaks far above the ±1 waveform the case's max_abs bound (4.68e-5) was calibrated on, so the bound it
    // is held to is scaled up by that ratio; its rel_l2 stays at float32 rounding relative to its values
    const c = await loadCase(fixtureDir('audio', 'hifigan.generate'));
    const peakOf = (name: string): number => (c.t(name).data as Float32Array).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(peakOf('mid.ups4') / peakOf('out.wav')).toBeGreaterThan(10);
    expect(ups4.pass).toBe(true);
    expect(ups4.relL2).toBeLessThan(1.91e-5);
    const dir = edited('audio', 'hifigan.generate', (j) => { j.intermediates!['ups.4'] = 'mid.conv_post'; }); // same shape (2, 1, 8176)
    const { r, line } = await run(dir);
    expect(r.pass).toBe(false);
    expect(line).toContain('first intermediate off: mid.conv_post');
  });

  it('a declared intermediate the stage neither produces nor lists fails', async () => {
    const dir = edited('encoder', 'audio.resample_44k1_48k', (j) => { j.intermediates = { ...j.intermediates, 'padded waveform': 'mid.kernel' }; });
    const { r, line } = await run(dir);
    expect(r.pass).toBe(false);
    expect(line).toContain('intermediate "padded waveform" not produced (and not listed as one the stage cannot produce)');
  });

  it('a stage that ignores a declared prompt input fails naming it (the check sound2sound used to miss)', async () => {
    registerStage('test.ignores_prompt', async (c) => ({ audio: c.input('sound') }));
    const dir = edited('encoder', 'audio.resample_44k1_48k', (j) => {
      j.stage = 'test.ignores_prompt';
      j.config = {};
      j.intermediates = {};
      j.inputs = { sound: 'in.waveform', prompt: 'in.waveform' };
      j.outputs = { audio: 'in.waveform' };
    });
    const { r, line } = await run(dir);
    expect(r.pass).toBe(false);
    expect(r.problems).toEqual(['input "prompt" (in.waveform) was never read by the stage']);
    expect(line).toContain('input "prompt"');
    // a stage that fails (here: on the draws) before reading the prompt names the unread input beside its error
    registerStage('test.fails_before_prompt', async (c) => { c.input('sound'); c.replayNoise().randn([3, 3], 'prepare_latents'); return {}; });
    const failing = edited('encoder', 'audio.resample_44k1_48k', (j) => {
      j.stage = 'test.fails_before_prompt';
      j.config = {};
      j.intermediates = {};
      j.inputs = { sound: 'in.waveform', prompt: 'in.waveform' };
      j.noise = ['in.waveform'];
    });
    const f = await run(failing);
    expect(f.r.pass).toBe(false);
    expect(f.line).toContain('(declared inputs not read before the failure: prompt)');
  });
});

describe('mucodec.sound2sound takes a declared prompt (decode(codes, { prompt }), as a user calls it)', () => {
  it('an e2e case with inputs.prompt reads it and consumes the prompt\'s VAE draws; codes still exact', async () => {
    // no reference case has a prompt: this copy uses the input itself as the prompt (3.02 s: 303 mel frames → 37
    // latent frames), with the posterior draws of its two channels inserted after first_latent (e2e NOTES, draw 2)
    const dir = edited('e2e', 'mucodec.sound2sound', (j) => {
      j.inputs = { ...j.inputs, prompt: 'in.audio' };
      j.noise = ['noise.0', 'noise.prompt_0', 'noise.prompt_1', 'noise.1'];
    });
    const src = await loadCase(fixtureDir('e2e', 'mucodec.sound2sound'));
    const draw = (seed: number): Float32Array => Float32Array.from({ length: 16 * 37 * 32 }, (_, i) => Math.sin(i * 0.37 + seed));
    await writeSafetensors(join(dir, 'tensors.safetensors'), [
      ...[...src.tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, load: () => t.data })),
      ...[0, 1].map((k) => ({ name: `noise.prompt_${k}`, dtype: 'float32' as const, shape: [1, 16, 37, 32], load: () => draw(k) })),
    ]);
    const { r, line } = await run(dir);
    expect(r.error ?? null, line).toBeNull();
    // the prompt was read and all 4 draws were consumed (without the prompt the second draw would have the wrong shape)
    expect(r.problems, line).toEqual([]);
    expect(r.comparisons.find((x) => x.name === 'out.codes')!.pass, line).toBe(true);
    // the prompt conditions window 0: the audio is no longer the prompt-less reference's
    expect(r.comparisons.find((x) => x.name === 'out.audio')!.pass).toBe(false);
  });
});
