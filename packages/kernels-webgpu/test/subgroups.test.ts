import { describe, expect, it } from 'vitest';
// Pure functions of the sources (no device): which adapters get subgroups and an accumulator
// budget, and the tilings autoTiling picks under that budget.
import { autoTiling, batchedProblem, DEFAULT_TILING, matMulProgram } from '../src/matmul.js';
import { accumulatorLimit, fixedSubgroupSize } from '../src/subgroups.js';

const features = (...names: string[]) => ({ has: (n: string) => names.includes(n) });

// What headless Chromium 156 reports without a GPU (apps/browser's page), and Dawn in Node on lavapipe.
const SWIFTSHADER = {
  features: features('subgroups', 'subgroup-size-control', 'timestamp-query'),
  info: {
    vendor: 'google',
    architecture: 'swiftshader',
    device: '',
    description: '',
    subgroupMinSize: 4,
    subgroupMaxSize: 4,
  },
};
const LAVAPIPE = {
  features: features('subgroups'),
  info: {
    vendor: 'mesa',
    architecture: 'software',
    device: '',
    description: 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1',
    subgroupMinSize: 8,
    subgroupMaxSize: 8,
  },
};

describe('subgroups: adapters', () => {
  it('offers subgroups at one fixed size wherever the adapter has them (no Node-only rule)', () => {
    expect(fixedSubgroupSize(SWIFTSHADER)).toBe(4);
    expect(fixedSubgroupSize(LAVAPIPE)).toBe(8);
    expect(fixedSubgroupSize({ ...SWIFTSHADER, features: features() })).toBeUndefined();
    expect(fixedSubgroupSize({ ...LAVAPIPE, info: { ...LAVAPIPE.info, subgroupMaxSize: 16 } })).toBeUndefined();
  });

  it("budgets SwiftShader's compiler at 16 accumulators per invocation, lavapipe not at all", () => {
    expect(accumulatorLimit(SWIFTSHADER)).toBe(16);
    expect(accumulatorLimit({ features: features(), info: { description: 'SwiftShader Device (Subzero)' } })).toBe(16);
    expect(accumulatorLimit(LAVAPIPE)).toBeUndefined();
    expect(accumulatorLimit({ features: features() })).toBeUndefined();
  });
});

describe('subgroups: autoTiling under an accumulator budget', () => {
  // Regression: in headless Chromium (SwiftShader, subgroups of 4) the unbudgeted 32 × 2 and
  // 16 × 2 tiles (64 and 32 accumulators) never finished compiling and the device was lost.
  const shapes: [number, number, number][] = [
    [256, 64, 256],
    [256, 256, 64],
    [17, 9, 36],
    [65, 64, 65],
    [32, 32, 32],
    [1, 8, 8],
  ];

  it('keeps rows × colGroups within the budget, rows a multiple of the subgroup size', () => {
    for (const S of [4, 8, 16])
      for (const [M, K, N] of shapes) {
        const p = batchedProblem([2], M, N, K, false, false);
        const t = autoTiling(p, S, 16);
        expect(t.rows * t.colGroups, `S ${S} ${M}x${K}x${N}`).toBeLessThanOrEqual(16);
        expect(t.lanes).toBe('subgroup');
        expect(t.workgroup).toBe(S);
        expect(t.rows % S, `S ${S} rows ${t.rows}`).toBe(0);
        expect(typeof matMulProgram(p, t), `S ${S} ${M}x${K}x${N}`).toBe('object');
      }
  });

  it('prefers fewer rows to fewer column groups: 8 × 2 at S 4 where the full tile was 32 × 2', () => {
    const p = batchedProblem([], 256, 256, 64, false, false);
    expect(autoTiling(p, 4)).toEqual({ lanes: 'subgroup', rows: 32, colGroups: 2, workgroup: 4 });
    expect(autoTiling(p, 4, 16)).toEqual({ lanes: 'subgroup', rows: 8, colGroups: 2, workgroup: 4 });
    // 65 columns: one column group, so 16 rows fit.
    expect(autoTiling(batchedProblem([], 256, 65, 64, false, false), 4, 16)).toEqual({
      lanes: 'subgroup',
      rows: 16,
      colGroups: 1,
      workgroup: 4,
    });
  });

  it('without a budget the tiles are as before; with no subgroup tile that fits, the register kernel', () => {
    const p = batchedProblem([], 64, 64, 64, false, false);
    expect(autoTiling(p, 8)).toEqual({ lanes: 'subgroup', rows: 32, colGroups: 2, workgroup: 8 });
    expect(autoTiling(p, 8, 64)).toEqual(autoTiling(p, 8));
    expect(autoTiling(p, 32, 16)).toEqual(DEFAULT_TILING);
    expect(DEFAULT_TILING.rows * DEFAULT_TILING.colGroups).toBeLessThanOrEqual(16);
  });
});
