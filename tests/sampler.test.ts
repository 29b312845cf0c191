/**
 * Samplers: solver orders on analytic ODEs and on the tiny fixture DiT, user schedules / solvers, upstream's
 * Euler intermediates, tensor hygiene per step and per solve.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { loadCase, type FixtureCase } from '../src/fixtures.js';
import { toFloat32 } from '../src/hosttensor.js';
import { ditConfigFromUpstream } from '../src/dit/config.js';
import { Transformer2DModel } from '../src/dit/transformer.js';
import {
  cfmVelocity, drainStepsAsync, getSolver, incontextConstraint, linspaceF32, odeSteps, powerSchedule, registerSolver,
  solveCfm, solveCfmAsync, solveOde, solveOdeAsync, uniformSchedule, type Solver, type VelocityAt,
} from '../src/sampler/index.js';
import { fixtureDir } from './parity-helper.js';

function relErr(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.div(tf.norm(tf.sub(a, b)), tf.norm(b)).dataSync()[0]!);
}

/** dx/dt = λx + t, x(0) = x0:  x(t) = (x0 + 1/λ²)e^{λt} − t/λ − 1/λ² */
const LAMBDA = -1.5;
const linearV: VelocityAt = (x, t) => tf.tidy(() => tf.add(tf.mul(x, LAMBDA), t));
function linearExact(x0: number[], t: number): number[] {
  const l = LAMBDA;
  return x0.map((v) => (v + 1 / (l * l)) * Math.exp(l * t) - t / l - 1 / (l * l));
}

function errorsOnLinear(solver: string | Solver, stepsList: number[]): number[] {
  const x0v = [1.0, -0.5, 2.0, 0.25];
  const exact = linearExact(x0v, 1);
  const x0 = tf.tensor1d(x0v);
  const out = stepsList.map((n) => {
    const y = solveOde(linearV, x0, { solver, steps: n });
    const e = Math.max(...Array.from(y.dataSync(), (v, i) => Math.abs(v - exact[i]!)));
    y.dispose();
    return e;
  });
  x0.dispose();
  return out;
}

/** observed orders log2(e_n / e_2n) */
function orders(errs: number[]): number[] {
  return errs.slice(1).map((e, i) => Math.log2(errs[i]! / e));
}

describe('sampler', () => {
  beforeAll(async () => { await initBackend(); });

  it('default schedule is torch.linspace(0, 1, steps + 1) in float32 (fixture t_span bit-exact)', async () => {
    const c = await loadCase(fixtureDir('decoder', 'cfm.solve_euler'));
    const ref = toFloat32(c.t('in.t_span'));
    expect(Array.from(uniformSchedule(ref.length - 1))).toEqual(Array.from(ref));
    expect(Array.from(linspaceF32(0, 1, 4))).toEqual([0, Math.fround(1 / 3), Math.fround(1 - Math.fround(1 / 3)), 1]);
    expect(() => solveOde(linearV, tf.zeros([1]), { tSpan: [0, 0.5, 0.4] })).toThrow(/monotonic/);
  });

  it('analytic linear ODE: Euler is first order, Heun and midpoint second, rk4 fourth', () => {
    const before = tf.memory().numTensors;
    const eu = errorsOnLinear('euler', [8, 16, 32, 64]);
    const he = errorsOnLinear('heun', [8, 16, 32]);
    const mp = errorsOnLinear('midpoint', [8, 16, 32]);
    const r4 = errorsOnLinear('rk4', [2, 4, 8]);
    for (const o of orders(eu)) expect(o).toBeGreaterThan(0.9), expect(o).toBeLessThan(1.1);
    for (const o of [...orders(he), ...orders(mp)]) expect(o).toBeGreaterThan(1.8), expect(o).toBeLessThan(2.2);
    for (const o of orders(r4)) expect(o).toBeGreaterThan(3.5);
    console.log(`linear ODE max errors: euler ${eu.map((e) => e.toExponential(1))}, heun ${he.map((e) => e.toExponential(1))}, midpoint ${mp.map((e) => e.toExponential(1))}, rk4 ${r4.map((e) => e.toExponential(1))}`);
    // all converge to the same (exact) solution
    expect(eu.at(-1)!).toBeLessThan(2e-2);
    expect(he.at(-1)!).toBeLessThan(5e-4);
    expect(mp.at(-1)!).toBeLessThan(5e-4);
    expect(r4.at(-1)!).toBeLessThan(2e-5);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a research solver in a few lines (Ralston RK2) + a user t-schedule', () => {
    const ralston: Solver = {
      name: 'ralston', order: 2, evals: 2,
      step: (f, x, t, dt) => tf.tidy(() => {
        const k1 = f(x, t);
        const k2 = f(tf.add(x, tf.mul(k1, (2 / 3) * dt)), t + (2 / 3) * dt);
        return tf.add(x, tf.mul(tf.add(tf.mul(k1, 0.25), tf.mul(k2, 0.75)), dt));
      }),
    };
    registerSolver(ralston);
    expect(getSolver('ralston')).toBe(ralston);
    for (const o of orders(errorsOnLinear('ralston', [8, 16, 32]))) expect(o).toBeGreaterThan(1.8);
    // a non-uniform schedule (denser near t = 0) converges to the same solution
    const x0 = tf.tensor1d([1.0, -0.5, 2.0, 0.25]);
    const exact = linearExact([1.0, -0.5, 2.0, 0.25], 1);
    const errs = [16, 32, 64].map((n) => {
      const y = solveOde(linearV, x0, { solver: 'heun', tSpan: powerSchedule(n, 2) });
      const e = Math.max(...Array.from(y.dataSync(), (v, i) => Math.abs(v - exact[i]!)));
      y.dispose();
      return e;
    });
    x0.dispose();
    for (const o of orders(errs)) expect(o).toBeGreaterThan(1.8);
    expect(() => getSolver('nope')).toThrow(/unknown sampler "nope"/);
  });

  it('solveOdeAsync = solveOde bit for bit, and the event loop runs between its steps; stopping it frees its state', async () => {
    const before = tf.memory().numTensors;
    const x0 = tf.tensor1d([1.0, -0.5, 2.0, 0.25]);
    const sync = solveOde(linearV, x0, { solver: 'heun', steps: 6 });
    // a macrotask queued before the solve runs before it ends (one event-loop turn per step)
    const order: string[] = [];
    setImmediate(() => order.push('timer'));
    const asyncY = await solveOdeAsync(linearV, x0, { solver: 'heun', steps: 6, onStep: (s) => order.push(`step${s.step}`) });
    expect(Array.from(asyncY.dataSync())).toEqual(Array.from(sync.dataSync()));
    expect(order.indexOf('timer')).toBeGreaterThan(0);
    expect(order.indexOf('timer')).toBeLessThan(order.length - 1);
    sync.dispose(); asyncY.dispose();
    // an abort between steps: the rejection reaches the caller and the solver's state is disposed
    let n = 0;
    await expect(drainStepsAsync(odeSteps(linearV, x0, { steps: 10 }), () => { if (++n === 3) throw new Error('aborted'); })).rejects.toThrow('aborted');
    // a throw inside onStep (upstream-style abort check) as well
    expect(() => solveOde(linearV, x0, { steps: 10, onStep: (s) => { if (s.step === 4) throw new Error('stop'); } })).toThrow('stop');
    x0.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  describe('on the tiny fixture DiT', () => {
    let c: FixtureCase;
    let model: Transformer2DModel;
    const inp = (k: string): tf.Tensor4D => {
      const h = c.t(c.json.inputs![k]!);
      return tf.tensor4d(toFloat32(h), h.shape as [number, number, number, number]);
    };
    beforeAll(async () => {
      c = await loadCase(fixtureDir('decoder', 'cfm.solve_euler.g15_inc'));
      model = new Transformer2DModel(await c.weights(), ditConfigFromUpstream((c.json.config as { estimator: Record<string, unknown> }).estimator));
    });

    it('upstream Euler: estimator output and per-step inputs match mid.* (CFG rows [uncond; cond])', () => {
      const x = inp('x'), ic = inp('incontext_x'), mu = inp('mu');
      const sc = c.json.scalars as { incontext_length: number; guidance_scale: number };
      const tSpan = toFloat32(c.t('in.t_span'));
      const cfmIn = { x, incontextX: ic, incontextLength: sc.incontext_length, mu, guidanceScale: sc.guidance_scale };
      // raw estimator output at step 0 on [x;x] ‖ [ic;ic] ‖ [0;mu]
      const con = incontextConstraint(cfmIn)!;
      const x0 = con(x, tSpan[0]!);
      const ref0 = c.t('mid.x_step0');
      expect(relErr(x0, tf.tensor(toFloat32(ref0), ref0.shape))).toBeLessThan(1e-6);
      const est = tf.tidy(() => model.forward(tf.concat([tf.concat([x0, x0], 0), tf.concat([ic, ic], 0), tf.concat([tf.zerosLike(mu), mu], 0)], 1) as tf.Tensor4D, [tSpan[0]!, tSpan[0]!]));
      const refE = c.t('mid.estimator_out_step0');
      const refT = tf.tensor(toFloat32(refE), refE.shape);
      expect(relErr(est, refT)).toBeLessThan(1e-5);
      // each step's state, re-imposed at the next time, equals mid.x_step<k+1>
      const seen: number[] = [];
      const out = solveCfm(model, cfmIn, {
        tSpan,
        onStep: (s) => {
          if (s.step + 1 < s.steps) {
            const t = Math.fround(s.t + s.dt);
            const xi = con(s.x, t);
            const r = c.t(`mid.x_step${s.step + 1}`);
            seen.push(tf.tidy(() => relErr(xi, tf.tensor(toFloat32(r), r.shape))));
            xi.dispose();
          }
        },
      });
      expect(seen.length).toBe(3);
      for (const e of seen) expect(e).toBeLessThan(2e-5);
      for (const t of [x, ic, mu, x0, est, refT, out]) t.dispose();
      con.dispose();
    });

    it('Euler / Heun / midpoint converge to the same solution (orders 1, 2, 2 on a resolved interval)', () => {
      // the DiT's time embedding scales t by 1000, so with random weights v(x, t) oscillates on a ~1e-3 time
      // scale; a user t-schedule over [0.3, 0.302] puts the solvers in their asymptotic regime
      const x = inp('x'), ic = inp('incontext_x'), mu = inp('mu');
      const cfmIn = { x, incontextX: ic, incontextLength: 10, mu, guidanceScale: 1.5 };
      const span = (n: number) => Array.from({ length: n + 1 }, (_, i) => 0.3 + (0.002 * i) / n);
      const free = (y: tf.Tensor4D) => { const s = y.slice([0, 0, 10, 0], [1, 32, 14, 32]); y.dispose(); return s; };
      const ref = free(solveCfm(model, cfmIn, { solver: 'rk4', tSpan: span(8) }));
      const err = (solver: string, n: number) => { const y = free(solveCfm(model, cfmIn, { solver, tSpan: span(n) })); const e = relErr(y, ref); y.dispose(); return e; };
      const eu = [2, 4, 8].map((n) => err('euler', n));
      const he = [2, 4].map((n) => err('heun', n));
      const mp = [2, 4].map((n) => err('midpoint', n));
      for (const o of orders(eu)) expect(o).toBeGreaterThan(0.85), expect(o).toBeLessThan(1.15);
      expect(orders(he)[0]!).toBeGreaterThan(1.6);
      expect(orders(mp)[0]!).toBeGreaterThan(1.6);
      expect(he[1]!).toBeLessThan(eu[2]!);
      for (const t of [x, ic, mu, ref]) t.dispose();
    });

    it('solveCfmAsync = solveCfm bit for bit for every solver (stepAsync, or step for a solver without it), with event-loop turns between DiT blocks', async () => {
      const x = inp('x'), ic = inp('incontext_x'), mu = inp('mu');
      const cfmIn = { x, incontextX: ic, incontextLength: 10, mu, guidanceScale: 1.5 };
      const before = tf.memory().numTensors;
      const plain: Solver = { name: 'plain-euler', order: 1, evals: 1, step: getSolver('euler').step };
      for (const solver of ['euler', 'heun', 'midpoint', 'rk4', plain] as const) {
        const a = solveCfm(model, cfmIn, { solver, steps: 3 });
        let turns = 0, live = true;
        const tick = (): void => { if (live) { turns++; setImmediate(tick); } };
        setImmediate(tick);
        const b = await solveCfmAsync(model, cfmIn, { solver, steps: 3 });
        live = false;
        const name = typeof solver === 'string' ? solver : solver.name;
        expect(Buffer.from(b.dataSync().buffer).equals(Buffer.from(a.dataSync().buffer)), name).toBe(true);
        // a turn after each of the 3 steps at least; with stepAsync also between the blocks of every evaluation
        const evals = getSolver(solver).evals;
        const inner = typeof solver === 'string' ? 3 * evals * (model.blocks.length - 1) : 0;
        expect(turns, name).toBeGreaterThanOrEqual(3 + inner);
        a.dispose(); b.dispose();
      }
      // an AbortSignal fired from outside (a macrotask) stops the solve inside the first DiT evaluation, frees all
      const ac = new AbortController();
      let onSteps = 0;
      setImmediate(() => ac.abort(new Error('stopped from outside')));
      await expect(solveCfmAsync(model, cfmIn, { steps: 3, signal: ac.signal, onStep: () => { onSteps++; } })).rejects.toThrow('stopped from outside');
      expect(onSteps).toBe(0);
      expect(tf.memory().numTensors).toBe(before);
      // the DiT alone: forwardAsync = forward
      const h = tf.concat([x, ic, mu], 1) as tf.Tensor4D;
      const f1 = model.forward(h, [0.3]);
      const f2 = await model.forwardAsync(h, [0.3]);
      expect(Buffer.from(f2.dataSync().buffer).equals(Buffer.from(f1.dataSync().buffer))).toBe(true);
      for (const t of [h, f1, f2]) t.dispose();
      expect(tf.memory().numTensors).toBe(before);
      for (const t of [x, ic, mu]) t.dispose();
    });

    it('no tensor leaks: count constant across steps, back to start after a solve and dispose', async () => {
      model.dispose(); // releases the cached weights; the next forward uploads them again
      const start = tf.memory().numTensors;
      const m2 = new Transformer2DModel(await c.weights(), model.cfg, { residency: 'per-block' });
      const x = inp('x'), ic = inp('incontext_x'), mu = inp('mu');
      const cfmIn = { x, incontextX: ic, incontextLength: 10, mu, guidanceScale: 1.5 };
      for (const [solver, m] of [['euler', model], ['heun', model], ['midpoint', m2]] as const) {
        const counts: number[] = [];
        const y = solveCfm(m, cfmIn, { solver, steps: 4, onStep: () => counts.push(tf.memory().numTensors) });
        expect(new Set(counts).size, `${solver}: ${counts.join(',')}`).toBe(1);
        y.dispose();
      }
      // one explicit step through the velocity function
      const v = cfmVelocity(model, cfmIn);
      const n0 = tf.memory().numTensors;
      const k = v(x, 0.25);
      expect(tf.memory().numTensors).toBe(n0 + 1);
      k.dispose(); v.dispose();
      for (const t of [x, ic, mu]) t.dispose();
      model.dispose();
      m2.dispose();
      expect(tf.memory().numTensors).toBe(start);
    });
  });
});
