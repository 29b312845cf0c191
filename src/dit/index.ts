export { REAL_DIT_CONFIG, ditConfigFromUpstream, innerDim, type DiTConfig } from './config.js';
export { get2dSincosPosEmbed } from './posembed.js';
export { flowTimestepSinusoid, AdaLayerNormSingleFlow } from './timestep.js';
export { BasicTransformerBlock, type BlockWeights } from './block.js';
export { PatchEmbed, Transformer2DModel, type DiTOptions, type DiTTap, type Residency } from './transformer.js';
