import { defineParityTests } from './parity-helper.js';

defineParityTests('decoder');
