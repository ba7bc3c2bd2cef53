import { describe, expect, it } from 'vitest';
import {
  FUSED_KERNELS,
  isFusedKernelName,
  registerFusedKernel,
  registerFusedKernels,
  registry,
  tf,
  UnknownPluginError,
} from '@tessera/tensor-core';
import { referenceKernels, registerCpuDerivedBackend } from '@tessera/kernels-cpu';

// A backend name nothing else registers kernels under, so these tests change no real backend.
const SCRATCH = 'fusedtablescratch';

describe('FUSED_KERNELS', () => {
  it('names exactly the defined ops, each under its own name', () => {
    const defined = registry.op.list().sort();
    expect(Object.keys(FUSED_KERNELS).sort()).toEqual(defined);
    for (const [name, op] of Object.entries(FUSED_KERNELS)) expect(op.name).toBe(name);
  });

  it('pairs every backward kernel with its forward op', () => {
    for (const name of Object.keys(FUSED_KERNELS)) {
      if (name.endsWith('Grad')) expect(isFusedKernelName(name.slice(0, -'Grad'.length))).toBe(true);
    }
    expect(isFusedKernelName('TesseraAttentionGrad')).toBe(true);
    expect(isFusedKernelName('toString')).toBe(false);
  });
});

describe('registerFusedKernel', () => {
  it('rejects a name that is not a fused kernel, naming the closest one and the alternative', () => {
    const kernel = () => ({}) as tf.TensorInfo;
    const register = () => registerFusedKernel('TesseraLayerNrom' as never, SCRATCH, kernel);
    expect(register).toThrow(UnknownPluginError);
    expect(register).toThrow(
      /"TesseraLayerNrom" is not one of Tessera's fused kernels\. Did you mean "TesseraLayerNorm"\?/,
    );
    expect(register).toThrow(/registerOpKernel/);
    expect(() => registerFusedKernels(SCRATCH, { NotAnOp: kernel } as never)).toThrow(/"NotAnOp" is not one of/);
    expect(tf.getKernelsForBackend(SCRATCH)).toEqual([]);
  });

  it('registers a kernel that the op then runs, with its attrs filled in', async () => {
    const seen: unknown[] = [];
    registerCpuDerivedBackend(SCRATCH, { withFusedKernels: false });
    registerFusedKernel('TesseraGelu', SCRATCH, (args) => {
      seen.push(args.attrs);
      return referenceKernels.TesseraGelu(args);
    });
    await tf.setBackend(SCRATCH);
    try {
      expect(FUSED_KERNELS.TesseraGelu.hasKernel()).toBe(true);
      expect(FUSED_KERNELS.TesseraLayerNorm.hasKernel()).toBe(false);
      const x = tf.tensor([0, 1]);
      const y = FUSED_KERNELS.TesseraGelu({ x })[0]!;
      expect(y.dataSync()[1]).toBeCloseTo(0.8413, 4);
      expect(seen).toEqual([{ approximate: 'none' }]);
      tf.dispose([x, y]);
    } finally {
      await tf.setBackend('cpu');
      tf.removeBackend(SCRATCH);
    }
  });
});
