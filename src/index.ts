/**
 * mucodec-ts public API.
 *
 *   import { MuCodec, readWav, writeWav } from 'mucodec-ts';
 *   const codec = await MuCodec.load({ weightsDir: 'weights' });
 *   const { codes, meta } = await codec.encode(await readWav('song.wav'));
 *   const audio = await codec.decode(codes, { steps: 20, seed: 1 });
 *   await writeWav('song.out.wav', audio);
 *   codec.dispose();
 */
export {
  MuCodec, cutPrompt,
  type MuCodecConfig, type MuCodecPart, type LoadOptions, type EncodeOptions, type EncodeResult,
  type DecodeOptions, type DecodeProgress, type ReconstructOptions,
} from './codec.js';
export type { EncodeProgress } from './encoder.js';
export { readWav, writeWav, decodeWav, encodeWav, openWavSource, WavSource, type Audio } from './audio/wav.js';
export { WavStreamWriter, type AudioSink, type WavWriterOptions } from './audio/wav_writer.js';
export { openAudioSource, readAudio, detectFormat, SUPPORTED_FORMATS, type OpenedAudio } from './audio/open.js';
export { DecodedSource, AudioDecodeError } from './audio/decoded_source.js';
export { FlacEncoder, encodeFlac, floatToPcm, type FlacOptions } from './audio/flac_encode.js';
export { writeAudioFile, FlacFileWriter, outputFormat, type OutputFormat } from './audio/audio_out.js';
export {
  encodeFiles, decodeFiles, reconstructFiles, planFolder, AUDIO_EXTENSIONS,
  type FileJob, type FileResult, type FileProgress, type BatchOptions, type FolderPlan,
} from './batch_files.js';
export { memorySource, readAllFrames, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE, type AudioSource } from './audio/source.js';
export { resample } from './audio/resample.js';
export {
  readCodesFile, writeCodesFile, encodeCodesFile, decodeCodesFile, CodesFileError,
  type CodesFile, type CodesMeta,
} from './codesfile.js';
export { initBackend, currentBackend, BACKEND_ORDER, type BackendName, type BackendReport } from './backend.js';
/** wasm compute threads: call requestWasmThreads(n | 'auto') before the first initBackend() (or set MUCODEC_THREADS) */
export { requestWasmThreads, wasmThreads, parseThreads, coreCount } from './workers/wasm_threads.js';
export { SeededNoise, ReplayNoise, makeNoise, type NoiseSource } from './noise.js';
export {
  registerSolver, getSolver, solverNames, solveOde, solveOdeAsync, odeSteps, solveCfm, solveCfmAsync, cfmSteps, uniformSchedule, powerSchedule,
  euler, heun, midpoint, rk4, type Solver,
} from './sampler/index.js';
export { MuCodecDecoder, planCode2Sound, type Code2SoundOptions, type LatentWindow } from './decoder.js';
export { batchLatentWindows, type DecodeBatchOptions, type DecodeBatchProgress, type BatchLatentWindow } from './batch_decode.js';
export { Params } from './params.js';
export type { HostTensor, DType } from './hosttensor.js';
export { convert, type ConvertOptions, type ConvertResult } from '../convert/convert.js';
export { convertFolderDtype, type WeightsDtype } from '../convert/half_weights.js';
export { toHalfBits, narrowToHalf, widenHalf } from './half.js';
export { loadTorchCheckpoint, readStateDict } from '../convert/torch.js';
export { SafetensorsFile, readSafetensors, writeSafetensors } from '../convert/safetensors.js';
export { fetchWeights, RELEASED_CHECKPOINTS } from './commands/fetch_weights.js';
export { runParity } from './parity.js';
export { setDitPrecision, ditPrecision, parseDitPrecision, DIT_PRECISIONS, type DitPrecision } from './dit/precision.js';
export { roundToHalf } from '../layers/f16.js';
export {
  compareAudio, alignPair, computeMetrics, multiScaleMelDistance, multiResolutionStftDistance, logSpectralDistance, siSdr,
  integratedLoudness, type Metrics,
} from './metrics/index.js';
export { comparisonPicture } from './metrics/picture.js';
export { runSweep, sweepTable, type SweepOptions, type SweepRow, type SweepResult } from './metrics/sweep.js';
export { sweepPlot } from './metrics/sweep_plot.js';
