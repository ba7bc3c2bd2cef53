import {
  adamwOp,
  attentionOp,
  type FusedOp,
  geluOp,
  int8LinearOp,
  layerNormOp,
  linearOp,
  packedAttentionOp,
  type Rng,
  rmsNormOp,
  seqAttentionOp,
  softmaxCrossEntropyOp,
  sumSquaresOp,
  type Tensor,
} from '@tessera/tensor-core';
import { accumulation, illConditioned, TRANSCENDENTAL } from '../tolerances.js';
import { fixed, type HostInput, ints, normal, type OpCase, uniform } from './case.js';

type AnyOp = FusedOp<string, Record<string, unknown>>;
const asAny = (op: unknown) => op as AnyOp;

/** Runs a fused op with named inputs taken, in order, from the case's input list. */
function call(op: AnyOp, names: string[], attrs: Record<string, unknown>) {
  return (xs: Tensor[]) => op(Object.fromEntries(names.map((n, i) => [n, xs[i]!])), attrs);
}

const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

/**
 * Level-2 cases for every Tessera fused op, forward and gradient (the gradient runs the
 * backend's *Grad kernel when it has the forward kernel). Compared with the cpu kernels,
 * which accumulate in float64.
 */
export function fusedOpCases(): OpCase[] {
  const cases: OpCase[] = [];
  const add = (c: OpCase) => cases.push(c);

  // --- GELU (exact erf for BERT/T5, tanh approximation for GPT-2).
  for (const approximate of ['none', 'tanh']) {
    const shapes: [string, number[], number][] = [
      ['[1]', [1], 1],
      ['[3,7]', [3, 7], 3],
      ['[2,3,2048] large last dim', [2, 3, 2048], 3],
      ['[64] extreme |x| up to 30', [64], 12],
    ];
    for (const [variant, shape, std] of shapes) {
      add({
        name: `gelu ${approximate}/${variant}`,
        group: 'gelu',
        fused: geluOp,
        inputs: (rng) => [normal(rng, 'x', shape, std)],
        run: call(asAny(geluOp), ['x'], { approximate }),
        grad: [0],
        tolerance: TRANSCENDENTAL,
      });
    }
  }

  // --- layer norm (with and without beta) and RMS norm.
  const norms: [string, number[], (rng: Rng, shape: number[]) => HostInput, number][] = [
    ['[1,1] one channel', [1, 1], (rng, s) => normal(rng, 'x', s), 1],
    ['[3,7]', [3, 7], (rng, s) => normal(rng, 'x', s), 1],
    ['[2,3,4096] large last dim', [2, 3, 4096], (rng, s) => normal(rng, 'x', s), 1],
    ['[4,16] tiny variance (std 3e-3, eps matters)', [4, 16], (rng, s) => normal(rng, 'x', s, 3e-3), 1],
    ['[4,33] offset mean (1 ± 1e-2)', [4, 33], (rng, s) => normal(rng, 'x', s, 1e-2, 1), 100],
  ];
  for (const [variant, shape, gen, conditioning] of norms) {
    const c = shape[shape.length - 1]!;
    const rows = prod(shape) / c;
    const base = accumulation(Math.max(c, rows), 'mean/variance and per-channel gradient');
    const tolerance =
      conditioning > 1 ? illConditioned(base, conditioning, 'x - mean cancels two digits when |mean| = 100·std') : base;
    for (const withBeta of [true, false]) {
      add({
        name: `layerNorm${withBeta ? '' : ' no beta'}/${variant}`,
        group: 'layerNorm',
        fused: layerNormOp,
        inputs: (rng) => [
          gen(rng, shape),
          normal(rng, 'gamma', [c], 0.5, 1),
          ...(withBeta ? [normal(rng, 'beta', [c], 0.5)] : []),
        ],
        run: call(asAny(layerNormOp), withBeta ? ['x', 'gamma', 'beta'] : ['x', 'gamma'], { eps: 1e-5 }),
        grad: withBeta ? [0, 1, 2] : [0, 1],
        tolerance,
      });
    }
    if (conditioning === 1) {
      add({
        name: `rmsNorm/${variant}`,
        group: 'rmsNorm',
        fused: rmsNormOp,
        inputs: (rng) => [gen(rng, shape), normal(rng, 'gamma', [c], 0.5, 1)],
        run: call(asAny(rmsNormOp), ['x', 'gamma'], { eps: 1e-6 }),
        grad: [0, 1],
        tolerance: base,
      });
    }
  }

  // --- softmax cross-entropy with ignore index (padding, MLM's unmasked positions).
  const ce: [string, number[], number, 'mean' | 'sum', (labels: HostInput) => void][] = [
    ['[1,1] vocab of one', [1, 1], 1, 'mean', () => {}],
    ['[5,11] mean', [5, 11], 1, 'mean', () => {}],
    ['[5,11] sum', [5, 11], 1, 'sum', () => {}],
    ['[2,3,4096] large vocab, some ignored', [2, 3, 4096], 1, 'mean', (l) => l.values.set([-100, -100], 1)],
    ['[3,7] every label ignored (loss 0, no NaN)', [3, 7], 1, 'mean', (l) => l.values.fill(-100)],
    ['[4,9] large logits (std 30)', [4, 9], 30, 'mean', () => {}],
  ];
  for (const [variant, shape, std, reduction, edit] of ce) {
    const vocab = shape[shape.length - 1]!;
    const rows = prod(shape) / vocab;
    const tol = accumulation(rows * vocab, 'log-sum-exp and mean over rows');
    add({
      name: `softmaxCrossEntropy/${variant}`,
      group: 'softmaxCrossEntropy',
      fused: softmaxCrossEntropyOp,
      inputs: (rng) => {
        const labels = ints(rng, 'labels', shape.slice(0, -1), 0, vocab);
        edit(labels);
        return [normal(rng, 'logits', shape, std), labels];
      },
      run: call(asAny(softmaxCrossEntropyOp), ['logits', 'labels'], { reduction, ignoreIndex: -100 }),
      grad: [0],
      tolerance: std > 1 ? illConditioned(tol, 5, 'logits of ±90 leave few significant digits in x - max') : tol,
    });
  }

  // --- attention: plain, causal (GPT, T5 decoder), padding masks (BERT) including a fully
  // masked row, T5's additive relative-position bias (broadcast over batch), scale 1 (T5),
  // and a KV-cache shape (queries fewer than keys).
  interface AttentionCase {
    variant: string;
    q: [number, number, number, number];
    tk?: number;
    causal?: boolean;
    scale?: number | null;
    mask?: (rng: Rng, b: number, tk: number) => HostInput;
    bias?: number[];
  }
  const attention: AttentionCase[] = [
    { variant: '[1,1,1,1]', q: [1, 1, 1, 1] },
    { variant: '[2,3,5,8]', q: [2, 3, 5, 8] },
    { variant: 'causal [2,3,5,8]', q: [2, 3, 5, 8], causal: true },
    {
      variant: 'padding mask [2,2,4,8], second sequence fully masked',
      q: [2, 2, 4, 8],
      mask: () => fixed('mask', [2, 4], [1, 1, 1, 0, 0, 0, 0, 0], 'int32'),
    },
    {
      variant: 'causal + padding mask [3,2,6,4]',
      q: [3, 2, 6, 4],
      causal: true,
      mask: (rng, b, tk) => {
        const m = ints(rng, 'mask', [b, tk], 0, 2);
        m.values[0] = 1; // the first query of the first row keeps its only key
        return m;
      },
    },
    { variant: 'bias [1,3,5,5] scale 1 (T5)', q: [2, 3, 5, 8], scale: 1, bias: [1, 3, 5, 5] },
    { variant: 'KV cache causal q [1,2,3,16] k 7', q: [1, 2, 3, 16], tk: 7, causal: true },
    { variant: 'head 64, 17 tokens [1,2,17,64]', q: [1, 2, 17, 64], causal: true },
    // Longer than a backend's query block (native: 64 rows), with a partial last block:
    // block-wise causal skipping must give what the full product gives.
    { variant: 'causal, 150 tokens [1,2,150,16]', q: [1, 2, 150, 16], causal: true },
    {
      variant: 'causal + padding mask, 130 tokens [2,1,130,8]',
      q: [2, 1, 130, 8],
      causal: true,
      mask: (rng, b, tk) => {
        const m = ints(rng, 'mask', [b, tk], 0, 2);
        m.values[0] = 1;
        return m;
      },
    },
    { variant: 'KV cache causal q [1,2,70,8] k 100', q: [1, 2, 70, 8], tk: 100, causal: true },
    { variant: 'bias [1,2,70,70] scale 1, 70 tokens', q: [2, 2, 70, 8], scale: 1, bias: [1, 2, 70, 70] },
  ];
  // Every case twice: head-major q, k, v [B, H, T, D], and sequence-major [B, T, nHead·D]
  // (BERT's and T5's separate q/k/v projections as they come, heads merged in the output).
  const layouts = [
    { prefix: 'attention', op: attentionOp, shape: (B: number, H: number, T: number, D: number) => [B, H, T, D] },
    {
      prefix: 'seq-attention',
      op: seqAttentionOp,
      shape: (B: number, H: number, T: number, D: number) => [B, T, H * D],
    },
  ];
  for (const layout of layouts) {
    for (const a of attention) {
      const [B, H, Tq, D] = a.q;
      const Tk = a.tk ?? Tq;
      const names = ['q', 'k', 'v', ...(a.mask ? ['mask'] : []), ...(a.bias ? ['bias'] : [])];
      const differentiable = [0, 1, 2, ...(a.bias ? [names.length - 1] : [])];
      const attrs = {
        causal: a.causal ?? false,
        scale: a.scale ?? null,
        ...(layout.op === seqAttentionOp ? { nHead: H } : {}),
      };
      add({
        name: `${layout.prefix}/${a.variant}`,
        group: 'attention',
        fused: layout.op,
        inputs: (rng) => [
          normal(rng, 'q', layout.shape(B, H, Tq, D)),
          normal(rng, 'k', layout.shape(B, H, Tk, D)),
          normal(rng, 'v', layout.shape(B, H, Tk, D)),
          ...(a.mask ? [a.mask(rng, B, Tk)] : []),
          ...(a.bias ? [normal(rng, 'bias', a.bias)] : []),
        ],
        run: call(asAny(layout.op), names, attrs),
        grad: differentiable,
        tolerance: accumulation(Math.max(D, Tk), 'q·k and p·v'),
        // dk and dv sum over queries; the bias gradient over batch (and heads where broadcast).
        gradTolerance: accumulation(Math.max(D, Tk, Tq * B * H), 'attention gradients'),
      });
    }
  }

  // --- packed self-attention (GPT-2's c_attn output [B, T, 3E] in, heads merged out):
  // the same questions as above, asked through the packed layout, and more than one
  // query block.
  const packed: { variant: string; B: number; T: number; nHead: number; D: number; causal: boolean; mask?: boolean }[] =
    [
      { variant: 'causal [1,5,3·2·4]', B: 1, T: 5, nHead: 2, D: 4, causal: true },
      { variant: 'causal, 70 tokens [2,70,3·3·8]', B: 2, T: 70, nHead: 3, D: 8, causal: true },
      { variant: 'padding mask, not causal [2,9,3·2·8]', B: 2, T: 9, nHead: 2, D: 8, causal: false, mask: true },
      {
        variant: 'causal + padding mask, 66 tokens [2,66,3·1·16]',
        B: 2,
        T: 66,
        nHead: 1,
        D: 16,
        causal: true,
        mask: true,
      },
      { variant: 'head 64, 17 tokens [1,17,3·2·64]', B: 1, T: 17, nHead: 2, D: 64, causal: true },
    ];
  for (const a of packed) {
    const E = a.nHead * a.D;
    const names = ['qkv', ...(a.mask ? ['mask'] : [])];
    add({
      name: `packed-attention/${a.variant}`,
      group: 'attention',
      fused: packedAttentionOp,
      inputs: (rng) => [
        normal(rng, 'qkv', [a.B, a.T, 3 * E]),
        ...(a.mask
          ? [
              (() => {
                const m = ints(rng, 'mask', [a.B, a.T], 0, 2);
                m.values[0] = 1;
                return m;
              })(),
            ]
          : []),
      ],
      run: call(asAny(packedAttentionOp), names, { nHead: a.nHead, causal: a.causal, scale: null }),
      grad: [0],
      tolerance: accumulation(Math.max(a.D, a.T), 'q·k and p·v'),
      gradTolerance: accumulation(Math.max(a.D, a.T), 'attention gradients'),
    });
  }

  // --- AdamW update (forward only: three outputs, no gradient).
  const adamw: [string, number[], Record<string, number>][] = [
    ['[1] step 1', [1], { lr: 1e-3, step: 1 }],
    ['[7,3] step 10, weight decay 0.1', [7, 3], { lr: 3e-4, step: 10, weightDecay: 0.1 }],
    ['[4099] step 1000, no weight decay', [4099], { lr: 1e-2, step: 1000, weightDecay: 0 }],
  ];
  for (const [variant, shape, attrs] of adamw) {
    add({
      name: `adamw/${variant}`,
      group: 'adamw',
      fused: adamwOp,
      inputs: (rng) => [
        normal(rng, 'param', shape),
        normal(rng, 'grad', shape),
        normal(rng, 'm', shape, 0.1),
        uniform(rng, 'v', shape, 0, 0.01),
      ],
      run: call(asAny(adamwOp), ['param', 'grad', 'm', 'v'], attrs),
      tolerance: TRANSCENDENTAL,
    });
  }

  // --- dynamic int8 linear (inference only): per-row quantized activations times int8 weights,
  // integer sums, per-channel scales, optional bias; odd widths, one row, no bias.
  const int8: [string, number, number, number, boolean][] = [
    ['[3,67]·[33,67]ᵀ + bias', 3, 67, 33, true],
    ['[1,7]·[5,7]ᵀ', 1, 7, 5, false],
    ['[16,129]·[64,129]ᵀ + bias', 16, 129, 64, true],
  ];
  for (const [variant, rows, K, N, withBias] of int8) {
    add({
      name: `int8-linear/${variant}`,
      group: 'int8-linear',
      fused: int8LinearOp,
      inputs: (rng) => [
        normal(rng, 'x', [rows, K]),
        ints(rng, 'weight', [N, K], -127, 128),
        uniform(rng, 'scales', [N], 0.001, 0.02),
        ...(withBias ? [normal(rng, 'bias', [N])] : []),
      ],
      run: call(asAny(int8LinearOp), ['x', 'weight', 'scales', ...(withBias ? ['bias'] : [])], {}),
      tolerance: accumulation(K, 'integer dot products, dequantized in float32'),
    });
  }

  // --- fp32 linear: both weight layouts, with and without bias, K = 1 and a
  // deep K (the bias accumulates onto the GEMM's output in a kernel, after it in the reference).
  const linears: [string, number, number, number][] = [
    ['[1,1]·[1,1]', 1, 1, 1],
    ['[5,7]·[7,3]', 5, 7, 3],
    ['[33,96]·[96,130] odd sizes', 33, 96, 130],
    ['[16,1536]·[1536,24] deep', 16, 1536, 24],
  ];
  for (const [variant, rows, K, N] of linears) {
    for (const transposeWeight of [false, true]) {
      for (const withBias of [true, false]) {
        add({
          name: `linear ${transposeWeight ? '[out,in]' : '[in,out]'}${withBias ? '' : ' no bias'}/${variant}`,
          group: 'linear',
          fused: linearOp,
          inputs: (rng) => [
            normal(rng, 'x', [rows, K]),
            normal(rng, 'weight', transposeWeight ? [N, K] : [K, N], 1 / Math.sqrt(K)),
            ...(withBias ? [normal(rng, 'bias', [N])] : []),
          ],
          run: call(asAny(linearOp), ['x', 'weight', ...(withBias ? ['bias'] : [])], { transposeWeight }),
          grad: withBias ? [0, 1, 2] : [0, 1],
          tolerance: accumulation(K, 'dot products over the input features'),
          gradTolerance: accumulation(Math.max(K, N, rows), 'weight and bias gradients sum over rows'),
        });
      }
    }
  }

  // --- Σx² and the finiteness probe (what an optimizer step reads from every gradient):
  // several chunks of a backend's parallel sum, NaN and ±Inf anywhere, and finite values whose
  // squares overflow float32 (Σx² is +Inf there, and the probe must still say "finite").
  const withValue = (n: number, at: number, value: number) => (rng: Rng) => {
    const x = normal(rng, 'x', [n]);
    x.values[at] = value;
    return [x];
  };
  const sumSquares: [string, (rng: Rng) => HostInput[]][] = [
    ['[1]', (rng) => [normal(rng, 'x', [1])]],
    ['[3,7]', (rng) => [normal(rng, 'x', [3, 7])]],
    ['[70001] several chunks', (rng) => [normal(rng, 'x', [70001], 0.01)]],
    ['NaN in the last chunk', withValue(40000, 39999, Number.NaN)],
    ['+Inf', withValue(100, 3, Number.POSITIVE_INFINITY)],
    ['-Inf', withValue(100, 97, Number.NEGATIVE_INFINITY)],
    ['finite 3e38 (square overflows)', withValue(100, 50, 3e38)],
    ['empty [0]', () => [fixed('x', [0], [])]],
  ];
  for (const [variant, inputs] of sumSquares) {
    add({
      name: `sum-squares/${variant}`,
      group: 'sum-squares',
      fused: sumSquaresOp,
      inputs,
      run: call(asAny(sumSquaresOp), ['x'], {}),
      tolerance: accumulation(70001, 'Σx² over many elements'),
    });
  }
  return cases;
}
