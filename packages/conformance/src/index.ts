/**
 * @tessera/conformance — the cross-backend conformance suite. A backend is "supported"
 * exactly when it passes this suite against the cpu reference:
 *   1. tfjs-core's own shared op suite, with a per-backend expected-failure list;
 *   2. op and gradient conformance for every kernel GPT/BERT/T5 training runs and every
 *      Tessera fused op, under stated tolerances;
 *   3. GPT/BERT/T5 forward and backward against PyTorch fixtures;
 *   4. 20 AdamW steps per family: the loss curve matches the reference backend's.
 */
export { conformanceCli, CONFORMANCE_USAGE, type CliIo } from './cli.js';
export {
  type CloseTolerance,
  type Comparable,
  type Comparison,
  compareTensors,
  deviation,
  type Deviation,
  expectClose,
  type HostTensor,
  hostOf,
  toHost,
} from './compare.js';
export type { HostInput, KernelProbe, OpCase } from './level2/case.js';
export { loadExpectedFailures, type ExpectedFailures, type Level1Options } from './level1/run.js';
export {
  defaultFixturesDir,
  GRADIENT_TOLERANCE,
  type Level3Options,
  MODEL_FIXTURES,
  MODEL_OUTPUT_TOLERANCE,
  modelCases,
} from './level3.js';
export {
  BF16_TRAINING_TOLERANCE,
  type Level4Options,
  TRAINING_TOLERANCE,
  type TrainingFamily,
  trainingCases,
} from './level4.js';
export type {
  ConformanceSuites,
  ModelConformanceCase,
  TrainingConformanceCase,
} from './levels34.js';
export { formatJson, formatMarkdown, formatTable, summaryLine } from './report.js';
export {
  type CaseFilter,
  type ConformanceCase,
  type ConformanceOptions,
  type ConformancePlan,
  level2Cases,
  type PlannedLevel,
  planConformance,
  runConformance,
} from './run.js';
export { accumulation, ELEMENTWISE, EXACT, illConditioned, TRANSCENDENTAL } from './tolerances.js';
export type * from './types.js';
