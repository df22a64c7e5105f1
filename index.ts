/**
 * The package's entry: the typed library API. Everything here runs in a browser too
 * (no file system, no worker threads); the Node-only pieces live in `cli/`.
 */
export * from './ref/errors.js';
export * from './ref/tensor.js';
export * from './ref/kernels.js';
export * from './io/safetensors.js';
