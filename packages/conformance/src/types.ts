/** The four conformance levels (see the package README). */
export type LevelNumber = 1 | 2 | 3 | 4;

/**
 * How close a backend's result must be to the reference. A result passes when
 * maxAbs <= atol + rtol * scale, where scale is max |reference| over the tensor: relative
 * error measured against the tensor's own magnitude, which is how fp32 rounding grows in
 * sums, and robust to the near-zero elements every random tensor has.
 */
export interface Tolerance {
  rtol: number;
  atol: number;
  /**
   * What rtol is relative to (default "max"): the reference's max |value|; its L2 "norm"
   * (a gradient compared as a whole, as PyTorch fixtures state theirs); or each "element"
   * on its own (a loss curve, step by step). maxRelErr is reported against the same scale.
   */
  scale?: 'max' | 'norm' | 'element';
  /** Lower bound of the scale ("max"/"norm"): a gradient that is mathematically zero is compared in absolute terms. */
  floor?: number;
  /** Why this much: shown in the JSON report and next to each tolerance in the code. */
  why: string;
}

export type CaseStatus = 'pass' | 'fail' | 'skip';

/** One line of the report. */
export interface CaseResult {
  level: LevelNumber;
  /** Unique within its level, e.g. "matMul/transposeB [3,7]x[5,7]". */
  name: string;
  /** The op or family the case belongs to (tolerance key for level 2). */
  group: string;
  status: CaseStatus;
  pass: boolean;
  /** Largest |actual - reference| over every compared tensor; null where nothing numeric was compared. */
  maxAbsErr: number | null;
  /** maxAbsErr relative to the reference's scale (max |reference|). */
  maxRelErr: number | null;
  tolerance: Tolerance | null;
  /** What was checked, or what went wrong, in words. */
  message: string;
  /** For fused ops: whether the backend ran its own kernel or the reference composition. */
  kernel?: 'own' | 'reference-composition';
  durationMs: number;
}

export interface Level1Summary {
  passed: number;
  failed: number;
  pending: number;
  /** Failures listed in the backend's expected-failure list. */
  expectedFailures: number;
  /** Failures not on the list: regressions. */
  unexpectedFailures: string[];
  /** Specs on the list that now pass: the list should shrink. */
  newPasses: string[];
  /**
   * Specs that failed unexpectedly, then passed when run again on their own (counted as
   * passed, named in the message): a timing- or load-dependent spec, not a regression.
   */
  flaky: { name: string; message: string }[];
  /** Where the expected-failure list came from ("none" when there is none). */
  expectationsSource: string;
  tfjsCoreVersion: string;
}

export type LevelStatus = 'pass' | 'fail' | 'not-available';

export interface LevelResult {
  level: LevelNumber;
  title: string;
  status: LevelStatus;
  /** For "not-available": why, and what would make it available. */
  reason?: string;
  cases: CaseResult[];
  durationMs: number;
  level1?: Level1Summary;
}

export interface ConformanceResult {
  backend: string;
  reference: string;
  pass: boolean;
  levels: LevelResult[];
  counts: { cases: number; passed: number; failed: number; skipped: number };
  durationMs: number;
  startedAt: string;
}
