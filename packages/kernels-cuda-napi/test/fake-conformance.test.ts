// The conformance suite's op and gradient level (2) and training level (4) on backend
// "cudafake": CudaBackend and every cuda kernel's TS side (kernels/*.ts, register.ts) over the
// fake device of test/fake_device.ts, whose kernels compute what native/kernels/*.cu compute.
// This proves the host logic (argument layouts, GEMM strides of the attention passes, label
// handling, fallbacks, memory) against the cpu reference, on any machine. It does not prove
// the CUDA kernels: that is test/conformance.test.ts on a GPU.
import { createCpuBackend } from '@tessera/kernels-cpu';
import { tf } from '@tessera/tensor-core';
import * as tfc from '@tessera/tensor-core/tfjs';
import { describe, expect, it } from 'vitest';
import { CudaBackend } from '../src/backend.js';
import { registerCudaKernels } from '../src/register.js';
import { describeConformance } from '../../../tools/testing/conformance.js';
import { FakeDevice, fakeKernels } from './fake_device.js';

const dev = new FakeDevice();
registerCudaKernels('cudafake', fakeKernels(dev));
tfc.registerBackend('cudafake', () => new CudaBackend(dev, createCpuBackend()), 0);

await describeConformance({ backend: 'cudafake', levels: [2, 4] });

describe('what the suite ran on the (fake) device', () => {
  it('the fused ops, the GEMMs and the data movement ran as device kernels, not as host fallbacks', () => {
    const ran = new Set(dev.calls);
    for (const k of ['gemm', 'attentionSoftmax', 'softmaxBackward', 'layerNorm', 'layerNormGrad', 'gelu', 'geluGrad']) {
      expect(ran).toContain(k);
    }
    for (const k of [
      'rmsNorm',
      'rmsNormGrad',
      'crossEntropy',
      'adamw',
      'gather',
      'scatterAdd',
      'stridedCopy',
      'binary',
    ]) {
      expect(ran).toContain(k);
    }
    const backend = tf.findBackend('cudafake') as unknown as CudaBackend;
    if (process.env.TESSERA_PRINT_FALLBACKS) console.log(JSON.stringify(Object.fromEntries(backend.fallbacks)));
    // Host fallbacks happen (the tfjs-core ops the suite's gradients use), but never for these.
    for (const k of ['BatchMatMul', 'TesseraAttention', 'TesseraLayerNorm', 'TesseraAdamW', 'ExpandDims', 'SplitV']) {
      expect(backend.fallbacks.get(k)).toBeUndefined();
    }
  });
});
