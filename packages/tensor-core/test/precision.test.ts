import { afterAll, describe, expect, it } from 'vitest';
import {
  getMatmulPrecision,
  MATMUL_TOLERANCE,
  matmulPrecisionSupport,
  registerBackend,
  registry,
  resolveBackend,
  setMatmulPrecision,
  tf,
  withMatmulPrecision,
} from '@tessera/tensor-core';
import '@tessera/kernels-cpu';

// Two backends that differ only in what they declare: bf16 here, bf16 "not on this machine".
let bf16Here = true;
registerBackend('fakebf', () => {}, {
  description: 'test backend declaring bf16',
  priority: -1,
  isAvailable: () => ({ available: true, reason: 'test' }),
  matmulPrecision: () =>
    bf16Here ? { supported: true, reason: 'test bf16' } : { supported: false, reason: 'fakebf lacks it here' },
});

describe('matmul precision capability', () => {
  afterAll(() => {
    registry.backend.unregister('fakebf');
  });

  it('fp32 everywhere; bf16 only where a backend declares it, with its reason otherwise', () => {
    expect(matmulPrecisionSupport('cpu', 'fp32').supported).toBe(true);
    expect(matmulPrecisionSupport('cpu', 'bf16')).toEqual({
      supported: false,
      reason: 'backend cpu does not support bf16 matmul; remove bf16 or use a backend that has it',
    });
    expect(matmulPrecisionSupport('fakebf', 'bf16').supported).toBe(true);
    bf16Here = false;
    expect(matmulPrecisionSupport('fakebf', 'bf16')).toEqual({ supported: false, reason: 'fakebf lacks it here' });
    expect(() => setMatmulPrecision('bf16', 'fakebf')).toThrow('setMatmulPrecision("bf16"): fakebf lacks it here.');
    bf16Here = true;
    expect(() => matmulPrecisionSupport('cpu', 'fp16' as 'bf16')).toThrow(/Unknown matmul precision "fp16"/);
  });

  it('is set per backend, and withMatmulPrecision restores it even when fn throws', async () => {
    expect(getMatmulPrecision('fakebf')).toBe('fp32');
    setMatmulPrecision('bf16', 'fakebf');
    expect(getMatmulPrecision('fakebf')).toBe('bf16');
    expect(getMatmulPrecision('cpu')).toBe('fp32');
    setMatmulPrecision('fp32', 'fakebf');
    await expect(
      withMatmulPrecision(
        'bf16',
        () => {
          expect(getMatmulPrecision('fakebf')).toBe('bf16');
          throw new Error('boom');
        },
        'fakebf',
      ),
    ).rejects.toThrow('boom');
    expect(getMatmulPrecision('fakebf')).toBe('fp32');
    await tf.setBackend('cpu');
    expect(getMatmulPrecision()).toBe('fp32'); // the active backend by default
  });

  it('states a bf16 bound from 8 significand bits, far looser than fp32', () => {
    expect(MATMUL_TOLERANCE.bf16).toBe(2 ** -6);
    expect(MATMUL_TOLERANCE.fp32).toBeLessThan(MATMUL_TOLERANCE.bf16 / 1000);
  });

  it('resolveBackend names the backend useBackend would start, without starting it', async () => {
    await tf.setBackend('cpu');
    expect((await resolveBackend('fakebf')).name).toBe('fakebf');
    expect(tf.getBackend()).toBe('cpu');
    await expect(resolveBackend('nosuchbackend')).rejects.toThrow(/nosuchbackend/);
  });
});
