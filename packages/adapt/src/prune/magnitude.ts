import { type Module, type Parameter, TesseraError, tf, z } from '@tessera/tensor-core';
import { Linear } from '@tessera/transformer';
import { matchesTarget } from '../lora/model.js';

/** Magnitude pruning's options (a `magnitude-pruning` callback block takes the same). */
export const pruneOptionsSchema = z
  .object({
    /** Share of the targeted weights set to zero, in [0, 1). 2:4 is always 0.5. */
    sparsity: z.number().min(0).lt(1).default(0.5),
    /** "layer": each weight loses its own smallest `sparsity` share; "global": one threshold over all of them. */
    scope: z.enum(['layer', 'global']).default('layer'),
    /** "unstructured": any entries; "2:4": two of every four consecutive inputs of each output (NVIDIA's sparse pattern). */
    pattern: z.enum(['unstructured', '2:4']).default('unstructured'),
    /** Linear layers to prune (peft-style names or a regex); default every Linear but a classifier head. */
    target_modules: z.union([z.array(z.string().min(1)).min(1), z.string().min(1)]).optional(),
  })
  .strict()
  .refine((o) => o.pattern !== '2:4' || o.sparsity === 0.5, {
    message: 'pattern 2:4 prunes exactly half: leave sparsity out or set it to 0.5',
    path: ['sparsity'],
  });

export type PruneOptions = z.output<typeof pruneOptionsSchema>;

/** A pruned weight: its 0/1 mask (float32, the weight's shape), kept to re-apply after updates. */
export interface PruneMask {
  name: string;
  param: Parameter;
  mask: tf.Tensor;
  /** The weight stores [in, out] (GPT-2's Conv1D): 2:4 groups run along axis 0. */
  inputAxis: 0 | 1;
}

export interface LayerSparsity {
  name: string;
  zeros: number;
  size: number;
  sparsity: number;
}

/** The weights to prune: every Linear's weight that `targets` names (default: all but the task head). */
export function pruneTargets(model: Module, targets?: PruneOptions['target_modules']): [string, Linear][] {
  const linears = model.namedModules().filter((e): e is [string, Linear] => e[1] instanceof Linear && e[0] !== '');
  const heads = /(^|\.)(classifier|score|lm_head|seq_relationship)$/;
  const chosen = linears.filter(([n]) =>
    targets ? matchesTarget(n, targets) : !heads.test(n) && !/(^|\.)lora_[AB]$/.test(n),
  );
  if (!chosen.length)
    throw new TesseraError(
      `Pruning: target_modules ${JSON.stringify(targets)} match no Linear layer. Linear layers: ${[
        ...new Set(linears.map(([n]) => n.split('.').at(-1))),
      ].join(', ')}.`,
    );
  return chosen;
}

/** Indices of the `k` smallest |values| (ties: the lower index first, so the choice is deterministic). */
function smallest(values: Float32Array, k: number): Uint32Array {
  const order = new Uint32Array(values.length).map((_, i) => i);
  order.sort((a, b) => Math.abs(values[a]!) - Math.abs(values[b]!) || a - b);
  return order.subarray(0, k);
}

/**
 * Masks that zero the smallest-magnitude weights. Read from the weights as they are, so
 * computing them again on a pruned model (a resumed run) gives the same masks: the zeros
 * are the smallest magnitudes.
 */
export async function magnitudeMasks(model: Module, input: Partial<PruneOptions> = {}): Promise<PruneMask[]> {
  const options = pruneOptionsSchema.parse(input);
  const targets = pruneTargets(model, options.target_modules);
  const weights = await Promise.all(targets.map(([, l]) => l.weight.value.data() as Promise<Float32Array>));
  const keep = weights.map((w) => new Float32Array(w.length).fill(1));
  if (options.pattern === '2:4') {
    targets.forEach(([name, linear], t) => {
      const [rows, cols] = linear.weight.shape as [number, number];
      const inputAxis = linear.layout === 'inOut' ? 0 : 1;
      const inputs = inputAxis === 1 ? cols : rows;
      if (inputs % 4 !== 0) throw new TesseraError(`Pruning 2:4: ${name} has ${inputs} inputs, not a multiple of 4.`);
      const at = (o: number, i: number) => (inputAxis === 1 ? o * cols + i : i * cols + o);
      const outputs = inputAxis === 1 ? rows : cols;
      const w = weights[t]!;
      for (let o = 0; o < outputs; o++)
        for (let g = 0; g < inputs; g += 4) {
          const group = [0, 1, 2, 3].map((j) => at(o, g + j));
          group.sort((a, b) => Math.abs(w[a]!) - Math.abs(w[b]!) || a - b);
          keep[t]![group[0]!] = 0;
          keep[t]![group[1]!] = 0;
        }
    });
  } else if (options.scope === 'layer') {
    weights.forEach((w, t) => {
      for (const i of smallest(w, Math.floor(options.sparsity * w.length))) keep[t]![i] = 0;
    });
  } else {
    const total = weights.reduce((n, w) => n + w.length, 0);
    const all = new Float32Array(total);
    const offsets: number[] = [];
    let offset = 0;
    for (const w of weights) {
      offsets.push(offset);
      all.set(w, offset);
      offset += w.length;
    }
    for (const i of smallest(all, Math.floor(options.sparsity * total))) {
      let t = offsets.length - 1;
      while (offsets[t]! > i) t--;
      keep[t]![i - offsets[t]!] = 0;
    }
  }
  return targets.map(([name, linear], t) => ({
    name: `${name}.weight`,
    param: linear.weight,
    mask: tf.tensor(keep[t]!, linear.weight.shape, 'float32'),
    inputAxis: linear.layout === 'inOut' ? 0 : 1,
  }));
}

/** w ← w·mask for every mask: pruned entries are exactly zero again (after an optimizer step moved them). */
export function applyMasks(masks: readonly PruneMask[]): void {
  for (const { param, mask } of masks) {
    const masked = tf.tidy(() => tf.mul(param.value, mask));
    param.assign(masked);
    masked.dispose();
  }
}

export function disposeMasks(masks: readonly PruneMask[]): void {
  tf.dispose(masks.map((m) => m.mask));
}

/** Zeros per weight of `model`'s Linear layers (or the named weights), and over all of them. */
export async function sparsityReport(
  model: Module,
  names?: readonly string[],
): Promise<{ layers: LayerSparsity[]; total: LayerSparsity }> {
  const own = new Map(model.namedParameters());
  const chosen = names ?? pruneTargets(model).map(([n]) => `${n}.weight`);
  const layers: LayerSparsity[] = [];
  for (const name of chosen) {
    const p = own.get(name);
    if (!p) throw new TesseraError(`sparsityReport: the model has no parameter "${name}".`);
    const values = (await p.value.data()) as Float32Array;
    let zeros = 0;
    for (const v of values) if (v === 0) zeros++;
    layers.push({ name, zeros, size: values.length, sparsity: zeros / values.length });
  }
  const zeros = layers.reduce((n, l) => n + l.zeros, 0);
  const size = layers.reduce((n, l) => n + l.size, 0);
  return { layers, total: { name: 'total', zeros, size, sparsity: size ? zeros / size : 0 } };
}

/**
 * One-shot magnitude pruning: zeroes the weights now and returns the masks (to re-apply
 * after further updates, then dispose). A saved model holds the zeros: there is no mask
 * file, and it loads as a plain dense model.
 */
export async function prune(model: Module, options: Partial<PruneOptions> = {}): Promise<PruneMask[]> {
  const masks = await magnitudeMasks(model, options);
  applyMasks(masks);
  return masks;
}
