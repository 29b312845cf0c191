/** Importing this module registers every implemented parity stage (one file per fixture family). */
import './torchload.js';
import './encoder_rvq.js';
import './decoder.js';
import './encoder_muq.js';
import './audio.js';
import './e2e.js';
