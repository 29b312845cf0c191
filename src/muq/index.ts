/**
 * MuQ encoder (MuCodec's `muencoder`): see muq.ts for the API. Resampling 48 kHz → 24 kHz (`rsq48tomuencoder`)
 * is in src/audio/resample.ts (`resample48kTo24k`, `resample`).
 */
export { MuQEncoder, MUQ_DEFAULT_CONFIG, MUCODEC_MUQ_LAYER, muqConfigFromDicts, type MuQConfig, type MuQEncoderOptions } from './muq.js';
export { MelFeatures, MUQ_MEL_CONFIG, hannWindow, melFilterbankHTK, type MelConfig } from './features.js';
export { Conv2dSubsampling, type ConvSubsamplingConfig } from './conv_subsampling.js';
export { ConformerLayer, RotaryTensors, rotaryInvFreq, rotaryTables, rotaryFromStacked, type ConformerConfig } from './conformer.js';
