import { registerCpuDerivedBackend } from '@tessera/kernels-cpu';
import { describe, expect, it } from 'vitest';
import { BF16_TRAINING_TOLERANCE, runConformance, TRAINING_TOLERANCE, trainingCases } from '@tessera/conformance';

registerCpuDerivedBackend('nobf16');

describe('level 4 in bf16 mode', () => {
  it('has its own stated tolerance and names; the fp32 cases keep theirs', () => {
    const fp32 = trainingCases();
    const bf16 = trainingCases({ matmulPrecision: 'bf16' });
    expect(fp32.map((c) => c.tolerance)).toEqual([TRAINING_TOLERANCE, TRAINING_TOLERANCE, TRAINING_TOLERANCE]);
    expect(fp32.every((c) => c.matmulPrecision === undefined)).toBe(true);
    expect(bf16.map((c) => c.tolerance.rtol)).toEqual([3e-2, 3e-2, 3e-2]);
    expect(bf16[0]!.tolerance).toBe(BF16_TRAINING_TOLERANCE);
    expect(bf16.map((c) => c.name)).toEqual(fp32.map((c) => `${c.name}, bf16 matmuls`));
    expect(TRAINING_TOLERANCE.rtol).toBe(1e-3);
  });

  it('fails each case, saying why, on a backend that does not declare bf16 matmul', async () => {
    const r = await runConformance({
      backend: 'nobf16',
      levels: [4],
      level4: { families: ['gpt'], steps: 2, matmulPrecision: 'bf16' },
    });
    expect(r.pass).toBe(false);
    expect(r.levels[0]!.cases[0]!.message).toBe(
      'threw: setMatmulPrecision("bf16"): backend nobf16 does not support bf16 matmul; remove bf16 or use a backend that has it.',
    );
  });
});
