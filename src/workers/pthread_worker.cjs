'use strict';
// The emscripten pthread worker of tfjs-backend-wasm's threaded SIMD build, as a file Node's worker_threads can
// start (src/workers/wasm_threads.ts points the backend's worker Blob URL here; it ships with the package as is).
// It runs the package's own wasm-out/…worker.js contents behind a small prelude that maps the main-script Blob
// the backend posts to the package's wasm-out/tfjs-backend-wasm-threaded-simd.js file.
const { dirname, join } = require('node:path');

const wasmOut = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'wasm-out');
const MAIN_JS = join(wasmOut, 'tfjs-backend-wasm-threaded-simd.js');
const contents = require(join(wasmOut, 'tfjs-backend-wasm-threaded-simd.worker.js')).wasmWorkerContents;

const createUrl = URL.createObjectURL.bind(URL);
const revokeUrl = URL.revokeObjectURL.bind(URL);
URL.createObjectURL = (b) => (b && b.type === 'text/javascript' ? MAIN_JS : createUrl(b));
URL.revokeObjectURL = (u) => { if (u !== MAIN_JS) revokeUrl(u); };
// the main script ends with `module.exports = …` (CommonJS); importScripts evaluates it at global scope
globalThis.module = { exports: {} };
globalThis.exports = globalThis.module.exports;
// the string holds newlines inside its JS string literals (tfjs's Blob escapes them the same way)
new Function('require', '__filename', contents.replace(/\n/g, '\\n'))(require, __filename);
