import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packagePath } from '../package_files.js';

/** The tiny test model that ships with the package (weights/tiny of the package, wherever the command runs). */
export function tinyWeightsDir(): string {
  return packagePath('weights', 'tiny');
}

/**
 * The weights folder a command uses: --weights, else $MUCODEC_WEIGHTS, else ./weights (of the working directory)
 * when it holds a converted model, else the package's tiny test model (random weights: noise, not music) with a
 * notice.
 */
export function resolveWeightsDir(explicit: string | undefined, notice: (line: string) => void = (l) => console.error(l)): string {
  if (explicit) return explicit;
  if (process.env.MUCODEC_WEIGHTS) return process.env.MUCODEC_WEIGHTS;
  if (existsSync(join('weights', 'config.json'))) return 'weights';
  const tiny = tinyWeightsDir();
  if (existsSync(join(tiny, 'config.json'))) {
    notice(`note: using the tiny test model in ${tiny} (random weights: the output is noise, not music); get the released model with \`mucodec fetch-weights\``);
    return tiny;
  }
  return 'weights';
}
