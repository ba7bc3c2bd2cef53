export * from './config.js';
export * from './layer.js';
export * from './model.js';
export * from './peft.js';
export * from './plugin.js';
