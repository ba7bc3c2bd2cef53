export * from './config.js';
export * from './distill.js';
export * from './losses.js';
export * from './student.js';
export * from './validate.js';
