import { Rng, type Tensor, tf } from '@tessera/tensor-core';
import { activate, memorySnapshot } from '../backends.js';
import { type Deviation, describeDeviation, deviation, type HostTensor } from '../compare.js';
import type { CaseResult, Tolerance } from '../types.js';
import type { HostInput, OpCase } from './case.js';

/** What one backend computed for a case: forward outputs then gradients, by name. */
interface Evaluation {
  outputs: { name: string; tensor: HostTensor; isGrad: boolean }[];
  error?: string;
  leak?: string;
}

async function read(t: Tensor): Promise<HostTensor> {
  // data(), never dataSync(): a GPU backend in Node can only read asynchronously.
  const values = await t.data();
  return { shape: [...t.shape], dtype: t.dtype, values: values as ArrayLike<number> };
}

function toTensor(x: HostInput): Tensor {
  return tf.tensor(x.values, x.shape, x.dtype);
}

const asList = (y: Tensor | Tensor[]) => (Array.isArray(y) ? y : [y]);

/**
 * Runs `c` on `backend`: the forward pass, then the gradients of a seeded random
 * weighting of the float outputs (so every output element gets its own upstream
 * gradient, not just ones). Counts live tensors and backend buffers around the whole
 * thing when `checkLeaks`.
 */
export async function evaluate(c: OpCase, backend: string, checkLeaks: boolean): Promise<Evaluation> {
  await activate(backend);
  const inputs = c.inputs(new Rng(`conformance/${c.name}`));
  const before = memorySnapshot();
  // IS_TEST makes tfjs check every kernel call for buffers it allocated and did not
  // return, and throw naming the kernel: the most useful message a leak can get.
  const wasTest = tf.env().getBool('IS_TEST');
  if (checkLeaks) tf.env().set('IS_TEST', true);
  const live: Tensor[] = [];
  const ev: Evaluation = { outputs: [] };
  try {
    const xs = inputs.map(toTensor);
    live.push(...xs);
    // No tidy here on purpose: a kernel that creates tensors and keeps them must show up.
    const ys = asList(c.run(xs));
    live.push(...ys);
    for (const [i, y] of ys.entries()) {
      ev.outputs.push({ name: ys.length === 1 ? 'y' : `y${i}`, tensor: await read(y), isGrad: false });
    }
    if (c.grad?.length) {
      const weightRng = new Rng(`conformance/${c.name}/dy`);
      const floats = ys.map((y, i) => [y, i] as const).filter(([y]) => y.dtype === 'float32');
      const weights = floats.map(([y]) => tf.tensor(weightsFor(weightRng, y.size), y.shape, 'float32'));
      live.push(...weights);
      const loss = (...d: Tensor[]) => {
        const args = [...xs];
        c.grad!.forEach((idx, k) => {
          args[idx] = d[k]!;
        });
        const outs = asList(c.run(args));
        const terms = floats.map(([, i], k) => tf.sum(tf.mul(outs[i]!, weights[k]!)));
        return terms.length === 1 ? terms[0]! : tf.addN(terms);
      };
      const grads = tf.grads(loss)(c.grad.map((i) => xs[i]!));
      live.push(...grads);
      for (const [k, g] of grads.entries()) {
        ev.outputs.push({ name: `d${inputs[c.grad[k]!]!.name}`, tensor: await read(g), isGrad: true });
      }
    }
  } catch (err) {
    ev.error = err instanceof Error ? err.message.split('\n')[0]! : String(err);
  } finally {
    for (const t of live) if (!t.isDisposed) t.dispose();
    tf.env().set('IS_TEST', wasTest);
  }
  if (checkLeaks) {
    const after = memorySnapshot();
    const tensors = after.tensors - before.tensors;
    const buffers = after.buffers - before.buffers;
    if (tensors > 0 || buffers > 0) {
      ev.leak = `leaked ${tensors} tensor(s) and ${buffers} backend buffer(s) that the case did not hold`;
    }
  }
  return ev;
}

function weightsFor(rng: Rng, n: number): Float32Array {
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = rng.normal();
  return w;
}

export interface Level2RunOptions {
  backend: string;
  reference: string;
  tolerances?: Record<string, Partial<Tolerance>>;
}

/** The tolerance for a case: a caller's override by case name, then by group, then the stated default. */
export function toleranceFor(c: OpCase, grad: boolean, overrides?: Record<string, Partial<Tolerance>>): Tolerance {
  const base = (grad && c.gradTolerance) || c.tolerance;
  const o = overrides?.[c.name] ?? overrides?.[c.group];
  if (!o) return base;
  return {
    rtol: o.rtol ?? base.rtol,
    atol: o.atol ?? base.atol,
    why: o.why ?? `overridden by the caller (was: ${base.why})`,
  };
}

/** Runs one case on the reference and on the target and compares every output. */
export async function runCase(c: OpCase, options: Level2RunOptions): Promise<CaseResult> {
  const started = performance.now();
  const result = (pass: boolean, message: string, extra: Partial<CaseResult> = {}): CaseResult => ({
    level: 2,
    name: c.name,
    group: c.group,
    status: pass ? 'pass' : 'fail',
    pass,
    maxAbsErr: null,
    maxRelErr: null,
    tolerance: toleranceFor(c, false, options.tolerances),
    message,
    ...(c.fused ? { kernel: c.fused.hasKernel(options.backend) ? 'own' : 'reference-composition' } : {}),
    durationMs: Math.round(performance.now() - started),
    ...extra,
  });

  const ref = await evaluate(c, options.reference, false);
  if (ref.error) return result(false, `the reference backend "${options.reference}" failed: ${ref.error}`);
  const got = await evaluate(c, options.backend, true);
  if (got.error) return result(false, `threw: ${got.error}${got.leak ? `; ${got.leak}` : ''}`);

  const problems: string[] = [];
  if (got.outputs.length !== ref.outputs.length) {
    problems.push(`returned ${got.outputs.length} outputs, the reference ${ref.outputs.length}`);
  }
  let maxAbs = 0;
  let maxRel = 0;
  let worstTol = toleranceFor(c, false, options.tolerances);
  let worstRatio = -1;
  for (const [i, want] of ref.outputs.entries()) {
    const have = got.outputs[i];
    if (!have) continue;
    const tol = toleranceFor(c, want.isGrad, options.tolerances);
    const d: Deviation = deviation(have.tensor, want.tensor, tol);
    maxAbs = Math.max(maxAbs, d.maxAbs);
    maxRel = Math.max(maxRel, d.maxRel);
    // Report the tolerance of the output that came closest to (or furthest past) its limit.
    const allowed = tol.atol + tol.rtol * d.scale;
    const ratio = allowed === 0 ? (d.maxAbs === 0 ? 0 : Number.POSITIVE_INFINITY) : d.maxAbs / allowed;
    if (ratio > worstRatio) {
      worstRatio = ratio;
      worstTol = tol;
    }
    if (!d.pass) problems.push(describeDeviation(want.name, d, have.tensor, want.tensor));
  }
  if (got.leak) problems.push(got.leak);
  const names = ref.outputs.map((o) => o.name).join(', ');
  return result(problems.length === 0, problems.length ? problems.join('; ') : `${names} match ${options.reference}`, {
    maxAbsErr: maxAbs,
    maxRelErr: maxRel,
    tolerance: worstTol,
  });
}
