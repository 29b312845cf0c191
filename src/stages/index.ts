/** Importing this module registers every implemented parity stage (one file per fixture family). */
import './encoder_rvq.js';
