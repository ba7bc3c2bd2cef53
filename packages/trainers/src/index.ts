/**
 * @tessera/trainers — the Trainer (config -> registry -> a short loop -> callbacks),
 * checkpoints with exact resume, metrics, the built-in callbacks (registered), plots and
 * progress output.
 */
export * from './adapter.js';
export * from './arguments.js';
export * from './assemble.js';
export * from './callbacks/index.js';
export * from './checkpoint.js';
export * from './config.js';
export * from './metrics.js';
export * from './order.js';
export * from './plot.js';
export * from './progress.js';
export * from './trainer.js';
export * from './validate.js';
