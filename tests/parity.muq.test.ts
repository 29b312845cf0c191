/** Parity of the MuQ side of the encoder family (resampling, features, conv frontend, conformer layer, encoder). */
import { defineParityTests } from './parity-helper.js';

defineParityTests('encoder', {
  only: [
    'audio.resample_48k_24k', 'audio.resample_44k1_48k', 'audio.resample_16k_48k',
    'muq.features', 'muq.conv_subsampling', 'muq.conformer_layer', 'muq.encoder',
  ],
});
