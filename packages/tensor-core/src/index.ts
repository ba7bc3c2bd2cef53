/**
 * @tessera/tensor-core — the engine seam. Every Tessera package takes tensors, ops
 * and autodiff from here (`tf`), never from tfjs directly.
 */
export { tf } from './tf.js';
export type * from './tf.js';
export * from './backend.js';
export * from './config.js';
export * from './errors.js';
export * from './memory.js';
export * from './module.js';
export * from './op.js';
export * from './ops/index.js';
export * from './precision.js';
export * from './registry.js';
export * from './rng.js';
