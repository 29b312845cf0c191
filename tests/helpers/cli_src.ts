/**
 * bin/mucodec.js on the TypeScript sources (the bin itself runs the compiled dist/): the tests that need the CLI
 * in a process of its own (signals, exit codes) run this through tests/helpers/run_child.ts.
 */
import { main } from '../../src/cli.js';

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  console.error(`mucodec: ${(err as Error).message ?? err}`);
  process.exitCode = 1;
}
