/**
 * Flow-matching samplers. See solvers.ts for the Solver interface (adding one is a few lines), ode.ts for
 * the driver, cfm.ts for MuCodec's guided / in-context problem.
 */
export { euler, heun, midpoint, rk4, registerSolver, getSolver, solverNames, type Solver, type VelocityAt } from './solvers.js';
export { solveOde, type OdeOptions, type StepInfo } from './ode.js';
export { linspaceF32, uniformSchedule, checkSchedule, powerSchedule } from './schedule.js';
export { cfmVelocity, incontextConstraint, solveCfm, type CfmInputs, type Estimator } from './cfm.js';
