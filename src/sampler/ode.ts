/**
 * The ODE driver: integrate dx/dt = v(x, t) over a time schedule with a pluggable solver.
 *
 * Time bookkeeping follows upstream BASECFM.solve_euler exactly (float32): t starts at t_span[0], each step
 * uses dt = t_span[k+1] − t and then t ← t + dt, so the times the velocity sees are the ACCUMULATED float32
 * times (bit-identical to upstream's, which can differ from t_span[k] in the last bit).
 *
 * An optional `constrain(x, t)` is applied to the state at the start of every step and to every point a
 * solver evaluates the velocity at (CFM in-context frames: the known frames are put back on their
 * noise→data path at that time). For Euler this is exactly upstream's in-place overwrite before each step.
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkSchedule, uniformSchedule } from './schedule.js';
import { getSolver, type Solver, type VelocityAt, type VelocityAtAsync } from './solvers.js';
import { abortCheck, drainSteps, drainStepsAsync, yieldToEventLoop } from '../steps.js';

export { drainSteps, drainStepsAsync, yieldToEventLoop };

export interface StepInfo {
  /** 0-based step index */
  step: number;
  steps: number;
  /** time at the start of the step and its length */
  t: number;
  dt: number;
  /** the state after the step (valid only during the callback) */
  x: tf.Tensor;
}

export interface OdeOptions {
  /** number of steps of the default schedule linspace(0, 1, steps + 1) (ignored when tSpan is given) */
  steps?: number;
  /** explicit time schedule (steps + 1 points, strictly increasing) */
  tSpan?: ArrayLike<number>;
  /** 'euler' (upstream, default), 'heun', 'midpoint', 'rk4', a registered name, or a Solver object */
  solver?: string | Solver;
  /** projection applied before every velocity evaluation and at the start of each step (returns a new tensor) */
  constrain?: (x: tf.Tensor, t: number) => tf.Tensor;
  /** progress / inspection callback after each step */
  onStep?: (info: StepInfo) => void;
}

/** Upstream's float32 time bookkeeping: t starts at tSpan[0]; each step has dt = tSpan[k+1] − t, then t ← t + dt. */
function* stepTimes(tSpan: ArrayLike<number>): Generator<{ k: number; steps: number; t: number; dt: number }, void, void> {
  const f32 = Math.fround;
  const steps = tSpan.length - 1;
  let t = tSpan[0]!;
  for (let k = 0; k < steps; k++) {
    const dt = f32(tSpan[k + 1]! - t);
    yield { k, steps, t, dt };
    t = f32(t + dt);
  }
}

/** the solver state moves to `next`: the old tensor is freed (unless `next` is the same tensor) */
function replaceState(x: tf.Tensor, next: tf.Tensor): tf.Tensor {
  if (next !== x) x.dispose();
  return next;
}

function scheduleOf(opts: OdeOptions): ArrayLike<number> {
  return opts.tSpan !== undefined ? checkSchedule(opts.tSpan) : uniformSchedule(opts.steps ?? 20);
}

/**
 * The solve as a generator: one `yield` after every step (its StepInfo, after `onStep` ran), the final x as the
 * return value. Lets a caller run the steps synchronously (`solveOde`) or inspect / stop between them. Stopping it
 * early (`return()` / a throw) disposes the state; inputs are never disposed.
 */
export function* odeSteps(v: VelocityAt, x0: tf.Tensor, opts: OdeOptions = {}): Generator<StepInfo, tf.Tensor, void> {
  const tSpan = scheduleOf(opts);
  const solver = getSolver(opts.solver ?? 'euler');
  const c = opts.constrain;
  const f: VelocityAt = c
    ? (x, t) => tf.tidy(() => { const xc = c(x, t); return v(xc, t); })
    : v;
  let x = tf.clone(x0);
  let finished = false;
  try {
    for (const { k, steps, t, dt } of stepTimes(tSpan)) {
      x = replaceState(x, c ? c(x, t) : x); // in-context frames put back on their path at the step's start
      x = replaceState(x, solver.step(f, x, t, dt));
      const info: StepInfo = { step: k, steps, t, dt, x };
      opts.onStep?.(info);
      yield info;
    }
    finished = true;
    return x;
  } finally {
    if (!finished) x.dispose();
  }
}

/**
 * Solve from x0 at tSpan[0] to tSpan[last]. `x0` is not disposed; the result is a new tensor.
 * `v` must return a new tensor and not dispose its input.
 */
export function solveOde(v: VelocityAt, x0: tf.Tensor, opts: OdeOptions = {}): tf.Tensor {
  return drainSteps(odeSteps(v, x0, opts));
}

export interface OdeAsyncOptions extends OdeOptions {
  /**
   * The velocity `v` again, computed with event-loop turns inside it (e.g. the DiT between its blocks). Used with
   * solvers that have `stepAsync` (all built-in ones); the result is the same bytes as `solveOde`'s.
   */
  velocityAsync?: VelocityAtAsync;
  /** checked at every event-loop turn of the solver itself; once aborted, its reason is thrown and the state freed */
  signal?: AbortSignal;
}

/**
 * `solveOde` that does not hold the event loop: a turn after every step, and inside the steps too when
 * `velocityAsync` is given and the solver has `stepAsync`. Same steps, same result.
 */
export async function solveOdeAsync(v: VelocityAt, x0: tf.Tensor, opts: OdeAsyncOptions = {}): Promise<tf.Tensor> {
  const solver = getSolver(opts.solver ?? 'euler');
  const va = opts.velocityAsync;
  const check = abortCheck(opts.signal);
  if (!va || !solver.stepAsync) return drainStepsAsync(odeSteps(v, x0, opts), check);
  const tSpan = scheduleOf(opts);
  const c = opts.constrain;
  const fa: VelocityAtAsync = c
    ? async (x, t) => {
      const xc = c(x, t);
      try {
        return await va(xc, t);
      } finally {
        xc.dispose();
      }
    }
    : va;
  let x = tf.clone(x0);
  try {
    for (const { k, steps, t, dt } of stepTimes(tSpan)) {
      x = replaceState(x, c ? c(x, t) : x);
      x = replaceState(x, await solver.stepAsync(fa, x, t, dt));
      opts.onStep?.({ step: k, steps, t, dt, x });
      await yieldToEventLoop();
      check?.();
    }
    return x;
  } catch (e) {
    x.dispose();
    throw e;
  }
}
