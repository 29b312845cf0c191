export { RVQ, MUCODEC_RVQ_CONFIG, type RVQConfig, type RVQParts, type QuantizeResult, type FromCodesResult } from './rvq.js';
