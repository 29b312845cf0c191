import { defineParityTests } from './parity-helper.js';

// upstream sound2sound on tiny weights of every real block, through MuCodec.encode + MuCodec.decode
defineParityTests('e2e');
