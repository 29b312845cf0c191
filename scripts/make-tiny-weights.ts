/**
 * Writes weights/tiny/: a complete tiny MuCodec (every stage, real layer types and upstream names, ~4 MB) in the
 * converted layout (`mucodec convert` output: encoder/decoder/vae .safetensors + config.json).
 *
 * The weights are the random weights of the reference fixture `e2e/mucodec.sound2sound` (upstream modules built at
 * tiny widths from a fixed seed, one flat container holding the keys of all three real checkpoints), put through
 * the same converter users run on the released checkpoints. So `mucodec reconstruct` with weights/tiny runs the
 * very model the end-to-end fixture pins down — and makes noise, not music (random weights).
 *
 *   npm run make-tiny-weights            (node dist/scripts/make-tiny-weights.js [outDir])
 */
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { convert } from '../convert/convert.js';

const ROOT = join(import.meta.dirname, '..', '..');
// relative paths (from the repository root) so that config.json records no machine-specific path
const SRC = join('tests', 'fixtures', 'convert', 'e2e.weights.pt');
const CONFIG = join('tests', 'fixtures', 'convert', 'e2e.case-config.json');

export async function makeTinyWeights(outDir = join('weights', 'tiny')): Promise<void> {
  process.chdir(ROOT);
  const r = await convert({ mucodec: SRC, muq: SRC, audioldm: SRC, outDir, config: CONFIG });
  await writeFile(join(outDir, 'README.md'), `# weights/tiny

A complete **tiny** MuCodec with random weights (every block of the real model at tiny widths, upstream names),
written by \`npm run make-tiny-weights\` from the reference fixture \`e2e/mucodec.sound2sound\` through
\`mucodec convert\`. It exists so that every command runs on a fresh clone and the whole chain can be tested.
**It makes noise, not music.** For music, download and convert the released checkpoints (see the top README:
\`npx mucodec fetch-weights\`).
`);
  for (const f of r.files) console.log(`${f.path}: ${f.tensors} tensors, ${(f.bytes / 1e6).toFixed(2)} MB`);
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  await makeTinyWeights(process.argv[2]);
}
