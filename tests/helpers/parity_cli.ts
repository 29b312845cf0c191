/**
 * Child process of tests/parity_threads.test.ts: `mucodec parity <dirs>` through the CLI's own entry point, in a
 * process of its own so the wasm thread count (MUCODEC_THREADS) is fixed before the backend starts. Prints the
 * backend's thread count as one JSON line first, then the runner's PASS/FAIL lines; exits with the runner's code.
 */
import { main } from '../../src/cli.js';
import { initBackend } from '../../src/backend.js';
import { wasmThreads } from '../../src/workers/wasm_threads.js';

await initBackend('wasm');
process.stdout.write(`${JSON.stringify({ threads: wasmThreads() })}\n`);
process.exit(await main(['parity', ...process.argv.slice(2)]));
