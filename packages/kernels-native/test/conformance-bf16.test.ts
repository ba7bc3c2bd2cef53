import { BF16_TRAINING_TOLERANCE } from '@tessera/conformance';
import { matmulPrecisionSupport } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
import '@tessera/kernels-native';
import { describeConformance } from '../../../tools/testing/conformance.js';

// Level 4 (training) for "native" with its matmuls in bf16, against cpu in fp32, at the
// stated BF16_TRAINING_TOLERANCE; the fp32 run (conformance.test.ts) keeps its own 1e-3.
const support = matmulPrecisionSupport('native', 'bf16');
if (support.supported) {
  await describeConformance({
    backend: 'native',
    imports: ['@tessera/kernels-native'],
    levels: [4],
    level4: { matmulPrecision: 'bf16' },
    requireAllLevels: true,
    reportName: 'native-bf16',
  });
} else {
  describe('conformance level 4, native in bf16', () => {
    it('is not run on this CPU, which says why', () => {
      expect(support.reason).toMatch(/lacks AVX-512 BF16/);
      expect(BF16_TRAINING_TOLERANCE.rtol).toBeGreaterThan(0);
    });
  });
}
