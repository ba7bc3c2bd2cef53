export { runSmoke, smokeConfigSchema, DEFAULT_SMOKE_CONFIG, type SmokeConfig, type SmokeResult } from './smoke.js';
export { TinyLm, type TinyLmConfig } from './tiny_lm.js';
export { defaultConfig, main } from './main.js';
export * from './commands.js';
