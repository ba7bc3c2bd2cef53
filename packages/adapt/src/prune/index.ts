export * from './callback.js';
export * from './magnitude.js';
