import { defineParityTests } from './parity-helper.js';

// every case folder under tests/fixtures/audio (copied from reference/audio) must pass its case.json tolerance
defineParityTests('audio');
