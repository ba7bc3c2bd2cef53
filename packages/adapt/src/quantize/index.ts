export * from './checkpoint.js';
export * from './config.js';
export * from './layer.js';
export * from './model.js';
export * from './plugin.js';
export * from './weights.js';
