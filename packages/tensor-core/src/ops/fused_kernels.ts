import type * as tf from '@tensorflow/tfjs-core';
import { closestMatch } from '../errors.js';
import { type FusedOp, type OpKernelArgs, registerOpKernel } from '../op.js';
import { UnknownPluginError } from '../registry.js';
import { adamwOp } from './adamw.js';
import { attentionGradOp, attentionOp } from './attention.js';
import { softmaxCrossEntropyGradOp, softmaxCrossEntropyOp } from './cross_entropy.js';
import { geluGradOp, geluOp } from './gelu.js';
import { int8LinearOp } from './int8_linear.js';
import { layerNormGradOp, layerNormOp, rmsNormGradOp, rmsNormOp } from './layer_norm.js';
import { linearGradOp, linearOp } from './linear.js';
import { packedAttentionGradOp, packedAttentionOp } from './packed_attention.js';
import { seqAttentionGradOp, seqAttentionOp } from './seq_attention.js';
import { sumSquaresOp } from './sum_squares.js';

/**
 * Tessera's fused ops by the kernel name a backend registers under, backward ops included
 * (a backend may accelerate those too). Backends take the names and the attribute types
 * from here, so a renamed op or attr breaks their build instead of silently falling back
 * to the reference composition.
 */
export const FUSED_KERNELS = {
  TesseraAttention: attentionOp,
  TesseraAttentionGrad: attentionGradOp,
  TesseraPackedAttention: packedAttentionOp,
  TesseraPackedAttentionGrad: packedAttentionGradOp,
  TesseraSeqAttention: seqAttentionOp,
  TesseraSeqAttentionGrad: seqAttentionGradOp,
  TesseraLayerNorm: layerNormOp,
  TesseraLayerNormGrad: layerNormGradOp,
  TesseraRmsNorm: rmsNormOp,
  TesseraRmsNormGrad: rmsNormGradOp,
  TesseraGelu: geluOp,
  TesseraGeluGrad: geluGradOp,
  TesseraSoftmaxCrossEntropy: softmaxCrossEntropyOp,
  TesseraSoftmaxCrossEntropyGrad: softmaxCrossEntropyGradOp,
  TesseraAdamW: adamwOp,
  TesseraSumSquares: sumSquaresOp,
  TesseraInt8Linear: int8LinearOp,
  TesseraLinear: linearOp,
  TesseraLinearGrad: linearGradOp,
} as const;

export type FusedKernelName = keyof typeof FUSED_KERNELS;

type KernelArgsOf<Op> = Op extends FusedOp<infer I, infer A, infer O> ? OpKernelArgs<I, A, O> : never;

/** What the kernel for `K` receives: typed inputs, the op's full attrs, the backend. */
export type FusedKernelArgs<K extends FusedKernelName> = KernelArgsOf<(typeof FUSED_KERNELS)[K]>;

/** Each fused kernel's attribute type, by kernel name. */
export type FusedKernelAttrs = { [K in FusedKernelName]: FusedKernelArgs<K>['attrs'] };

export type FusedKernel<K extends FusedKernelName> = (args: FusedKernelArgs<K>) => tf.TensorInfo | tf.TensorInfo[];

/**
 * Ops whose reference composition is a fine way to run them, so a complete backend may leave
 * them out: the attention layouts that only save the head split/transposes (the composition
 * runs the backend's own TesseraAttention), the one-pass gradient statistics (optim then
 * composes only the statistic it needs), the inference-only int8 linear (the composition
 * is an fp32 matmul of the quantized values), and the fp32 linear and its gradient
 * (the compositions are the backend's own matmul, add and sum; a kernel only saves a pass
 * over the output, or one over dy and a call).
 */
export const FALLBACK_FUSED_KERNELS = [
  'TesseraPackedAttention',
  'TesseraPackedAttentionGrad',
  'TesseraSeqAttention',
  'TesseraSeqAttentionGrad',
  'TesseraSumSquares',
  'TesseraInt8Linear',
  'TesseraLinear',
  'TesseraLinearGrad',
] as const;
type FallbackKernelName = (typeof FALLBACK_FUSED_KERNELS)[number];

/** A kernel for every fused op: what a complete backend provides (Partial<> for one family). */
export type FusedKernelTable = { readonly [K in Exclude<FusedKernelName, FallbackKernelName>]: FusedKernel<K> } & {
  readonly [K in FallbackKernelName]?: FusedKernel<K>;
};

export function isFusedKernelName(name: string): name is FusedKernelName {
  return Object.hasOwn(FUSED_KERNELS, name);
}

/**
 * Registers `backendName`'s kernel for one of Tessera's fused ops. The name is checked
 * against FUSED_KERNELS (and, as registerOpKernel does, against the defined ops); the
 * kernel's inputs and attrs are typed by the op.
 */
export function registerFusedKernel<K extends FusedKernelName>(
  name: K,
  backendName: string,
  kernel: FusedKernel<K>,
): void {
  if (!isFusedKernelName(name)) {
    const known = Object.keys(FUSED_KERNELS);
    const guess = closestMatch(name, known);
    throw new UnknownPluginError(
      `registerFusedKernel: "${name}" is not one of Tessera's fused kernels.${guess ? ` Did you mean "${guess}"?` : ''} ` +
        `Fused kernels: ${known.join(', ')}. A kernel for an op of your own (defineOp) registers with registerOpKernel.`,
    );
  }
  // defineOp hands every kernel the op's full attrs (defaults applied), so tfjs's untyped
  // attr map is exactly FusedKernelAttrs[K] here: this is the one place that says so.
  registerOpKernel(name, backendName, kernel as unknown as tf.KernelFunc);
}

/** Registers every kernel in `kernels` (a whole backend, or one op family) on `backendName`. */
export function registerFusedKernels(
  backendName: string,
  kernels: { readonly [K in FusedKernelName]?: FusedKernel<K> },
): FusedKernelName[] {
  const registered: FusedKernelName[] = [];
  const register = <K extends FusedKernelName>(name: K) => {
    const kernel = kernels[name];
    if (!kernel) return;
    registerFusedKernel(name, backendName, kernel);
    registered.push(name);
  };
  // Unknown keys (from untyped callers) reach registerFusedKernel, which names them.
  for (const name of Object.keys(kernels) as FusedKernelName[]) register(name);
  return registered;
}
