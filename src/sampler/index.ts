/**
 * Flow-matching samplers.
 *
 * The pieces, each replaceable:
 *  - a velocity field `v(x, t) → dx/dt` (tf tensors; t is one float32 time shared by the batch rows);
 *  - a time schedule from 0 (noise) to 1 (data): `uniformSchedule(steps)` = upstream's linspace, or any
 *    strictly increasing array (`powerSchedule`, or your own);
 *  - a Solver (`euler` = upstream, `heun`, `midpoint`, `rk4`, or your own — see solvers.ts; `registerSolver`
 *    makes it available by name, e.g. to the CLI's --sampler);
 *  - `solveOde(v, x0, { tSpan | steps, solver, constrain, onStep })` drives them with upstream's float32 time
 *    bookkeeping; `solveOdeAsync` is the same solve handing the event loop back after every step (and inside the
 *    steps, given `velocityAsync` and a solver with `stepAsync`), and `odeSteps` / `cfmSteps` are step generators
 *    (drive them yourself to inspect or stop between steps).
 *
 * MuCodec's problem on top (cfm.ts): `solveCfm(estimator, { x, incontextX, incontextLength, mu, guidanceScale },
 * { steps, solver, tSpan })` builds the guided velocity (`cfmVelocity`) and the in-context constraint
 * (`incontextConstraint`) and solves; with defaults it is bit-for-bit upstream's BASECFM.solve_euler order of
 * operations. Example (research):
 *
 *   const x = solveCfm(dit, inputs, { solver: 'heun', tSpan: powerSchedule(10, 1.5) });
 *
 * Batch: any B; every row gets the same t (upstream only runs B = 1).
 */
export { euler, heun, midpoint, rk4, registerSolver, getSolver, solverNames, type Solver, type VelocityAt, type VelocityAtAsync } from './solvers.js';
export { solveOde, solveOdeAsync, odeSteps, drainSteps, drainStepsAsync, yieldToEventLoop, type OdeOptions, type OdeAsyncOptions, type StepInfo } from './ode.js';
export { linspaceF32, uniformSchedule, checkSchedule, powerSchedule } from './schedule.js';
export { cfmVelocity, incontextConstraint, solveCfm, solveCfmAsync, cfmSteps, type CfmInputs, type Estimator } from './cfm.js';
