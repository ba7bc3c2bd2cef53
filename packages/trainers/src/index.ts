/**
 * @tessera/trainers — the Trainer (config -> run), checkpoints with exact resume,
 * metrics (registered), plots and progress output.
 */
export * from './arguments.js';
export * from './checkpoint.js';
export * from './config.js';
export * from './metrics.js';
export * from './plot.js';
export * from './progress.js';
export * from './tasks.js';
export * from './trainer.js';
