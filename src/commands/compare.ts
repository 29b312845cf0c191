/**
 * `mucodec compare <ref> <test> [--json] [--png out.png]`: quality metrics of a test recording against a
 * reference (src/metrics), aligned as upstream's reconstruct crops; `--png` draws both log-mel spectrograms and
 * their difference with the metrics as a caption.
 */
import { basename } from 'node:path';
import { readAudio } from '../audio/open.js';
import { writeFileAtomic } from '../atomic.js';
import { compareAudio, type Metrics } from '../metrics/index.js';
import { comparisonPicture } from '../metrics/picture.js';
import { checkKnown, optFlag, optString, parseArgs } from './args.js';

export const COMPARE_USAGE = 'usage: mucodec compare <ref> <test> [--json] [--png out.png]';

export const METRIC_LABELS: Record<keyof Metrics, string> = {
  mel_distance: 'multi-scale mel distance (DAC)',
  stft_distance: 'multi-resolution STFT distance (DAC)',
  si_sdr_db: 'SI-SDR (dB)',
  lsd: 'log-spectral distance',
  loudness_diff_lu: 'loudness difference, test − reference (LU)',
  ref_loudness_lkfs: 'reference integrated loudness (LKFS)',
  test_loudness_lkfs: 'test integrated loudness (LKFS)',
};

export async function compareCommand(argv: string[], log: (l: string) => void = (l) => console.log(l)): Promise<number> {
  const a = parseArgs(argv, ['json']);
  checkKnown(a, ['json', 'png']);
  if (a.positionals.length !== 2) throw new Error(`compare: give a reference and a test file\n${COMPARE_USAGE}`);
  const [refPath, testPath] = a.positionals as [string, string];
  const png = optString(a, 'png');
  const ref = await readAudio(refPath), test = await readAudio(testPath);
  const { metrics, aligned } = compareAudio(ref, test);
  if (png) {
    const pic = comparisonPicture(aligned, metrics, { reference: basename(refPath), test: basename(testPath) });
    await writeFileAtomic(png, pic.png);
  }
  if (optFlag(a, 'json')) {
    log(JSON.stringify({ reference: refPath, test: testPath, sample_rate: aligned.sampleRate, seconds: aligned.seconds, channels: aligned.ref.length, metrics, ...(png ? { png } : {}) }, null, 2));
  } else {
    log(`${basename(testPath)} against ${basename(refPath)}: ${aligned.seconds.toFixed(2)} s at ${aligned.sampleRate} Hz, ${aligned.ref.length} channel(s)`);
    for (const [k, label] of Object.entries(METRIC_LABELS) as [keyof Metrics, string][]) {
      const v = metrics[k];
      log(`  ${label.padEnd(44)} ${v === null ? 'n/a (silent)' : v.toFixed(4)}`);
    }
    if (png) log(`  picture: ${png}`);
  }
  return 0;
}
