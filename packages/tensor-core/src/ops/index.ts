export * from './adamw.js';
export * from './attention.js';
export * from './cross_entropy.js';
export * from './fused_kernels.js';
export * from './gelu.js';
export * from './layer_norm.js';
export * from './packed_attention.js';
export * from './sum_squares.js';
export { sumToShape } from './util.js';
