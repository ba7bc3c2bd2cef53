import * as tf from '@tensorflow/tfjs-core';
import './engine.js';
import { TesseraError } from './errors.js';
import { registry } from './registry.js';

type Tensor = tf.Tensor;
export type OpAttrs = Record<string, unknown>;

export interface TensorSpec {
  shape: number[];
  dtype: tf.DataType;
}

export interface GradientContext<I extends string, A> {
  /** The inputs the op was called with (present ones only). */
  inputs: Partial<Record<I, Tensor>> & Record<string, Tensor>;
  /** The op's outputs, in declared order. */
  outputs: Tensor[];
  attrs: A;
}

/**
 * `O` names the optional inputs at the type level (default: every input may be absent), so
 * a kernel sees the required ones as present and the optional ones as possibly undefined.
 */
export interface OpSpec<I extends string, A extends OpAttrs, O extends I = I> {
  /** Kernel name backends register under; letters and digits only (tfjs splits registry keys on "_"). */
  name: string;
  description: string;
  /** Input names in call order. */
  inputs: readonly I[];
  /** Inputs that may be omitted. */
  optionalInputs?: readonly O[];
  /** Output names; default ["y"]. */
  outputs?: readonly string[];
  /** Validates inputs and attrs (throw OpInputError) and gives each output's shape and dtype. */
  inferOutputs(inputs: Partial<Record<I, TensorSpec>>, attrs: A): TensorSpec[];
  /** The meaning of the op, as a composition of existing ops. Runs wherever a backend has no kernel. */
  reference(inputs: Partial<Record<I, Tensor>>, attrs: A): Tensor | Tensor[];
  /**
   * Gradient of the kernel path: given dy (one per output) returns a gradient per
   * differentiable input. Omit for non-differentiable ops (optimizer updates, backward ops).
   */
  gradient?(dy: Tensor[], context: GradientContext<I, A>): Partial<Record<I, Tensor>>;
  /** Inputs that never receive a gradient (integer labels, masks). */
  nonDifferentiable?: readonly I[];
  /** Attr defaults. */
  defaults?: Partial<A>;
}

export class OpInputError extends TesseraError {}

/**
 * What a backend's kernel for a fused op receives: the inputs the op was called with (optional
 * ones only when given) and the full attrs, defaults applied (defineOp fills them in).
 */
export interface OpKernelArgs<I extends string, A extends OpAttrs, O extends I = I> {
  inputs: { [N in Exclude<I, O>]: tf.TensorInfo } & { [N in O]?: tf.TensorInfo };
  attrs: A;
  backend: tf.KernelBackend;
}

export interface FusedOp<I extends string, A extends OpAttrs, O extends I = I> {
  readonly name: string;
  readonly spec: OpSpec<I, A, O>;
  /** Runs the op: the current backend's kernel if it has one, else the reference composition. */
  (inputs: Partial<Record<I, Tensor>>, attrs?: Partial<A>): Tensor[];
  /** The reference composition, whatever the backend (for conformance and tests). */
  reference(inputs: Partial<Record<I, Tensor>>, attrs?: Partial<A>): Tensor[];
  /** Whether `backend` (default: the current one) has its own kernel for this op. */
  hasKernel(backend?: string): boolean;
}

/**
 * Declares a fused op once: name, shapes, reference composition and gradient.
 * Backend packages add kernels for `name` with registerOpKernel (registerFusedKernel for
 * Tessera's own ops); a backend that has none runs the reference composition (slower,
 * never wrong).
 */
export function defineOp<I extends string, A extends OpAttrs, O extends I = I>(
  spec: OpSpec<I, A, O>,
): FusedOp<I, A, O> {
  if (!/^[A-Za-z][A-Za-z0-9]*$/.test(spec.name)) {
    throw new TesseraError(`Op name "${spec.name}" must be letters and digits only (tfjs splits kernel keys on "_").`);
  }
  const outputNames = spec.outputs ?? ['y'];
  const optional = new Set<string>(spec.optionalInputs ?? []);

  const prepare = (inputs: Partial<Record<I, Tensor>>, attrs: Partial<A> | undefined) => {
    const full = { ...spec.defaults, ...attrs } as A;
    const specs: Partial<Record<I, TensorSpec>> = {};
    for (const name of spec.inputs) {
      const t = inputs[name];
      if (t === undefined || t === null) {
        if (!optional.has(name)) {
          throw new OpInputError(`${spec.name}: input "${name}" is required (inputs: ${spec.inputs.join(', ')}).`);
        }
        continue;
      }
      if (!(t instanceof tf.Tensor)) {
        throw new OpInputError(`${spec.name}: input "${name}" must be a Tensor; got ${typeof t}.`);
      }
      specs[name] = { shape: t.shape, dtype: t.dtype };
    }
    for (const key of Object.keys(inputs)) {
      if (!(spec.inputs as readonly string[]).includes(key)) {
        throw new OpInputError(`${spec.name}: unknown input "${key}" (inputs: ${spec.inputs.join(', ')}).`);
      }
    }
    const outputs = spec.inferOutputs(specs, full);
    return { full, outputs };
  };

  const runReference = (inputs: Partial<Record<I, Tensor>>, attrs?: Partial<A>): Tensor[] => {
    const { full } = prepare(inputs, attrs);
    const out = spec.reference(inputs, full);
    return Array.isArray(out) ? out : [out];
  };

  if (spec.gradient && outputNames.length !== 1) {
    throw new TesseraError(`Op ${spec.name}: a differentiable op has exactly one output; got ${outputNames.length}.`);
  }
  const nonDiff = new Set<string>(spec.nonDifferentiable ?? []);

  /** The backend's kernel, wrapped so the tape records the op once with its declared gradient. */
  const runKernel = (inputs: Partial<Record<I, Tensor>>, attrs: A): Tensor[] => {
    const names = spec.inputs.filter((n) => inputs[n]);
    const tensors = names.map((n) => inputs[n]!);
    const call = (ins: Tensor[]) =>
      tf
        .engine()
        .runKernel(
          spec.name,
          Object.fromEntries(names.map((n, i) => [n, ins[i]!])) as tf.NamedTensorMap,
          attrs as unknown as tf.NamedAttrMap,
        ) as Tensor | Tensor[];
    if (!spec.gradient) {
      const out = call(tensors);
      return Array.isArray(out) ? out : [out];
    }
    const gradient = spec.gradient;
    // tfjs's own gradient registry cannot save optional inputs that were omitted, so
    // the kernel runs inside customGrad: one tape node, our gradient, any input subset.
    const withGradient = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => {
      const save = args.pop() as tf.GradSaveFunc;
      const ins = args as Tensor[];
      const y = call(ins) as Tensor;
      save([...ins, y]);
      return {
        value: y,
        gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
          const named = Object.fromEntries(names.map((n, i) => [n, saved[i]!])) as Record<string, Tensor>;
          const context = { inputs: named, outputs: [saved[names.length]!], attrs } as unknown as GradientContext<I, A>;
          const grads = gradient(Array.isArray(dy) ? dy : [dy], context) as Record<string, Tensor | undefined>;
          return names.map((n) => {
            const g = grads[n];
            if (g) return g;
            if (nonDiff.has(n)) return tf.zerosLike(named[n]!);
            throw new TesseraError(`Op ${spec.name}: its gradient returned nothing for input "${n}".`);
          });
        },
      };
    });
    return [withGradient(...tensors)];
  };

  const op = ((inputs: Partial<Record<I, Tensor>>, attrs?: Partial<A>): Tensor[] => {
    const { full } = prepare(inputs, attrs);
    if (tf.getKernel(spec.name, tf.getBackend())) return runKernel(inputs, full);
    const out = spec.reference(inputs, full);
    return Array.isArray(out) ? out : [out];
  }) as FusedOp<I, A, O>;

  Object.defineProperty(op, 'name', { value: spec.name });
  Object.assign(op, {
    spec,
    reference: runReference,
    hasKernel: (backend?: string) => tf.getKernel(spec.name, backend ?? tf.getBackend()) !== undefined,
  });

  registry.op.register(spec.name, () => op, {
    description: spec.description,
    inputs: spec.inputs,
    outputs: outputNames,
    differentiable: spec.gradient !== undefined,
  });
  return op;
}

/** Registers a backend's kernel for a fused op, after checking that the op exists. */
export function registerOpKernel(opName: string, backendName: string, kernelFunc: tf.KernelFunc): void {
  registry.op.get(opName);
  tf.registerKernel({ kernelName: opName, backendName, kernelFunc });
}

/** For each registered fused op: does `backend` have its own kernel, or run the reference? */
export function opKernelCoverage(backend: string): { op: string; kernel: boolean }[] {
  return registry.op.list().map((op) => ({ op, kernel: tf.getKernel(op, backend) !== undefined }));
}
