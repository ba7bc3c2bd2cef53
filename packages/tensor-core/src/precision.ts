import * as tf from '@tensorflow/tfjs-core';
import { TesseraError } from './errors.js';
import { registry } from './registry.js';

/**
 * The precision a backend's matmuls (BatchMatMul, forward and both gradient products) compute
 * in. Everything else — master weights, optimizer state, norms, softmax, the loss — stays
 * fp32 whatever this says. "bf16": operands rounded to bfloat16, products summed in fp32.
 */
export type MatmulPrecision = 'fp32' | 'bf16';

export const MATMUL_PRECISIONS: readonly MatmulPrecision[] = ['fp32', 'bf16'];

/** Whether a backend can run a precision here, and if not why (one line, saying what to do). */
export interface PrecisionSupport {
  supported: boolean;
  reason: string;
}

/**
 * The stated error bound of a matmul precision, as a multiple of √K·max|a|·max|b|: for every
 * element, |C − C_exact| ≤ tol·√K·max|a|·max|b| on inputs without cancellation-prone structure.
 *
 * bf16: rounding an operand to 8 significand bits errs by at most u = 2^-8 relative, so a
 * product a·b errs by |ab|·(δa + δb); vdpbf16ps-style dot products form each bf16·bf16
 * product exactly and sum in fp32 (2^-24 per add, negligible here). The K errors are
 * independent with zero mean and variance ≤ |ab|²·2u²/3, so their sum has a standard
 * deviation ≤ 0.82·u·√K·max|a|·max|b|; 4u = 2^-6 is ~5 standard deviations. (The
 * worst case, 2u·K·max|a|·max|b|, is reached only by adversarial inputs.)
 * fp32: 8·eps32 per √K, the conformance suite's accumulation tolerance.
 */
export const MATMUL_TOLERANCE: Readonly<Record<MatmulPrecision, number>> = {
  fp32: 8 * 2 ** -23,
  bf16: 2 ** -6,
};

/** What a backend declares when it registers (BackendMeta.matmulPrecision); fp32 is always supported. */
export type MatmulPrecisionCheck = (precision: Exclude<MatmulPrecision, 'fp32'>) => PrecisionSupport;

// Per backend, on globalThis like the registry: two tensor-core copies share one setting.
const KEY = Symbol.for('tessera.matmulPrecision');
const slot = globalThis as unknown as Record<symbol, Map<string, MatmulPrecision> | undefined>;
const chosen: Map<string, MatmulPrecision> = slot[KEY] ?? (slot[KEY] = new Map());

/** Whether `backend` (a registered backend name) can compute matmuls in `precision` on this machine. */
export function matmulPrecisionSupport(backend: string, precision: MatmulPrecision): PrecisionSupport {
  if (!(MATMUL_PRECISIONS as readonly string[]).includes(precision)) {
    throw new TesseraError(`Unknown matmul precision "${precision}" (known: ${MATMUL_PRECISIONS.join(', ')}).`);
  }
  if (precision === 'fp32') return { supported: true, reason: 'fp32 is every backend’s precision' };
  const check = registry.backend.has(backend)
    ? (registry.backend.get(backend).meta as { matmulPrecision?: MatmulPrecisionCheck }).matmulPrecision
    : undefined;
  return (
    check?.(precision) ?? {
      supported: false,
      reason: `backend ${backend} does not support ${precision} matmul; remove ${precision} or use a backend that has it`,
    }
  );
}

/**
 * Sets the matmul precision of `backend` (default: the active one). Throws, naming why,
 * where the backend does not support it; "fp32" always works.
 */
export function setMatmulPrecision(precision: MatmulPrecision, backend: string = tf.getBackend()): void {
  const support = matmulPrecisionSupport(backend, precision);
  if (!support.supported) throw new TesseraError(`setMatmulPrecision("${precision}"): ${support.reason}.`);
  if (precision === 'fp32') chosen.delete(backend);
  else chosen.set(backend, precision);
}

/** The matmul precision `backend` computes in (default: the active backend); a backend's kernels read it per call. */
export function getMatmulPrecision(backend: string = tf.getBackend()): MatmulPrecision {
  return chosen.get(backend) ?? 'fp32';
}

/** Runs `fn` with `backend`'s matmuls in `precision`, then restores what was set before (tests, conformance). */
export async function withMatmulPrecision<T>(
  precision: MatmulPrecision,
  fn: () => Promise<T> | T,
  backend: string = tf.getBackend(),
): Promise<T> {
  const before = getMatmulPrecision(backend);
  setMatmulPrecision(precision, backend);
  try {
    return await fn();
  } finally {
    setMatmulPrecision(before, backend);
  }
}
