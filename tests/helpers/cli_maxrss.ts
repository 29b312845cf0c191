/**
 * bin/mucodec.js's main on the TypeScript sources, then the process's peak resident set size on stdout
 * (`maxrss-kb N`): the memory tests compare it between inputs of different lengths.
 */
import { main } from '../../src/cli.js';

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  console.error(`mucodec: ${(err as Error).message ?? err}`);
  process.exitCode = 1;
}
console.log(`maxrss-kb ${process.resourceUsage().maxRSS}`);
