/**
 * WGSL kernels for TesseraAttention and TesseraAttentionGrad: scaled-dot-product attention
 * over q, k, v [batch, nHead, seqLen, headSize] with a causal band (queries end-aligned with
 * the keys, so a KV cache with fewer queries than keys works), a [batch, keyLen] padding mask,
 * an additive bias broadcast to [batch, nHead, queryLen, keyLen], and zeros for query rows
 * whose keys are all masked — the semantics of the cpu kernel in @tessera/kernels-cpu.
 *
 * Forward: one invocation per query row, an online softmax (running max and sum) over the
 * keys of its causal band, the p·v accumulators rescaled when the max grows. Nothing of size
 * [queries, keys] is written.
 *
 * Backward: one invocation per query row writes P and dS = P ⊙ (dP - Σ P·dP) side by side
 * ([rows, 2, keyLen]), dP = dy·vᵀ computed once per allowed pair. Then dq = dS·k (per query
 * row), dk = dSᵀ·q and dv = Pᵀ·dy (per key row, over the queries that see the key), and dbias
 * = dS summed over the bias's broadcast dimensions (a copy without bias or with a full one).
 *
 * Head sizes are compiled in: the row loops are unrolled, q/dy rows and the accumulators are
 * named registers, and rows are read as vec4 when the head size allows. On lavapipe this is
 * 1.8× faster than loops over private arrays (see BENCHMARKS.md), at the price of slow
 * first compiles for wide heads.
 */
import { type AttentionAttrs, type FusedKernelArgs, type FusedKernelTable, TesseraError } from '@tessera/tensor-core';
import type { TensorInfo } from '@tessera/tensor-core/tfjs';
import {
  elementwise,
  f32,
  groupedProgram,
  ints,
  type Packing,
  type Program,
  packing,
  storage,
  total,
  type Uniform,
  zero,
  zeros,
} from './program.js';
import { autoTiling, batchedProblem, DEFAULT_TILING, matMulProgram, runMatMul } from './matmul.js';
import { maxAccumulators, subgroupSize } from './subgroups.js';

/** Below any real score: exp(NEG - max) underflows to 0, so masked keys need no second test. */
const NEG = '-3.0e38';
/** Accumulator registers per pass (vec4 or f32 each); wider outputs take more passes. */
const ACC_MAX = 16;
/** Rows of up to this many units (vec4 or f32) are held in registers, with unrolled dot products. */
const UNROLL_MAX = 32;

interface AttentionShape {
  B: number;
  H: number;
  Tq: number;
  Tk: number;
  D: number;
  Dv: number;
  scale: number;
  causal: boolean;
  hasMask: boolean;
  /** The bias as given, or undefined when there is none. */
  biasShape: number[] | undefined;
}

/** The inputs forward and backward share (backward adds dy), as the op declares them. */
type AttentionInputs = FusedKernelArgs<'TesseraAttention'>['inputs'];

function attentionShape(inputs: AttentionInputs, attrs: AttentionAttrs): AttentionShape {
  const [B, H, Tq, D] = inputs.q.shape as [number, number, number, number];
  return {
    B,
    H,
    Tq,
    D,
    Tk: inputs.k.shape[2]!,
    Dv: inputs.v.shape[3]!,
    scale: attrs.scale ?? 1 / Math.sqrt(D),
    causal: attrs.causal,
    hasMask: !!inputs.mask,
    biasShape: inputs.bias?.shape,
  };
}

/**
 * WGSL declaring `let ${target} : f32` = this query row of `rowArray` · the row of `other` at
 * `otherBase`. Rows of up to UNROLL_MAX units come from the registers `${reg}0..` (see
 * loadRow), unrolled; longer rows loop over memory, which keeps shaders small.
 */
function rowDot(
  target: string,
  p: Packing,
  unitsUniform: string,
  reg: string,
  rowArray: string,
  other: string,
  otherBase: string,
): string {
  if (p.units === 0) return `let ${target} = 0.0;`;
  if (p.units <= UNROLL_MAX) {
    return `let ${target} = ${total(p, `(${each(p.units, (c) => `${reg}${c} * ${other}[${otherBase} + ${c}]`, ' + ')})`)};`;
  }
  // A uniform bound: with a constant one the shader compiler unrolls the loop anyway.
  return `var ${target}Sum = ${zero(p)};
    for (var c = 0; c < ${unitsUniform}; c = c + 1) {
      ${target}Sum = ${target}Sum + ${rowArray}[row * ${p.units} + c] * ${other}[${otherBase} + c];
    }
    let ${target} = ${total(p, `${target}Sum`)};`;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
/** WGSL: `f(c)` for every packed unit, joined by `sep`. */
const each = (n: number, f: (c: number) => string, sep = '\n') => range(n).map(f).join(sep);
/** Unit ranges of at most ACC_MAX, one pass each. */
const passes = (units: number) =>
  range(Math.ceil(units / ACC_MAX)).map((p) =>
    range(Math.min(ACC_MAX, units - p * ACC_MAX)).map((c) => p * ACC_MAX + c),
  );

const UNIFORMS =
  'tq : i32, tk : i32, heads : i32, qUnits : i32, vUnits : i32, causal : i32, causalOffset : i32, scale : f32, ' +
  'biasB : i32, biasH : i32, biasQ : i32, biasK : i32, sumB : i32, sumH : i32, sumQ : i32, sumK : i32, ' +
  'pdsHalf : i32,';

/** Values for UNIFORMS (bias strides 0 along broadcast dimensions; dbias sums along them). */
function uniformValues(a: AttentionShape): Uniform[] {
  const dbiasShape = (a.biasShape ?? [a.B, a.H, a.Tq, a.Tk]) as [number, number, number, number];
  const [, b1, b2, b3] = dbiasShape;
  const strides = [b1 * b2 * b3, b2 * b3, b3, 1];
  const full = [a.B, a.H, a.Tq, a.Tk];
  return [
    ints(a.Tq),
    ints(a.Tk),
    ints(a.H),
    ints(packing(a.D).units),
    ints(packing(a.Dv).units),
    ints(a.causal ? 1 : 0),
    ints(a.Tk - a.Tq),
    f32(a.scale),
    ...strides.map((s, i) => ints(dbiasShape[i] === 1 ? 0 : s)),
    ...dbiasShape.map((n, i) => ints(n === 1 ? full[i]! : 1)),
    ints(a.B * a.H * a.Tq * a.Tk),
  ];
}

/** keyEnd (the causal band of query qi), firstQuery (of key j) and keyAllowed (the padding mask). */
function prelude(hasMask: boolean): string {
  return `
  fn keyEnd(qi : i32) -> i32 {
    if (uniforms.causal != 0) { return min(uniforms.tk, qi + uniforms.causalOffset + 1); }
    return uniforms.tk;
  }
  fn firstQuery(j : i32) -> i32 {
    if (uniforms.causal != 0) { return max(0, j - uniforms.causalOffset); }
    return 0;
  }
  fn keyAllowed(b : i32, j : i32) -> bool {
    ${hasMask ? 'return f32(Mask[b * uniforms.tk + j]) != 0.0;' : 'return true;'}
  }`;
}

/** WGSL for query row `item` of head `group`: its coordinates and causal band end. */
const QUERY_ROW = `
  let bh = group;
  let qi = item;
  let row = bh * uniforms.tq + qi;
  let b = bh / uniforms.heads;
  let h = bh % uniforms.heads;
  let end = keyEnd(qi);`;

/** WGSL setting `s` to key j's score from the registers q0..: q·k·scale (+ bias). */
function score(a: AttentionShape, pk: Packing): string {
  return `
    let kBase = (bh * uniforms.tk + j) * ${pk.units};
    ${rowDot('qk', pk, 'uniforms.qUnits', 'q', 'Q', 'K', 'kBase')}
    var s = qk * uniforms.scale;
    ${a.biasShape ? 's = s + Bias[b * uniforms.biasB + h * uniforms.biasH + qi * uniforms.biasQ + j * uniforms.biasK];' : ''}`;
}

/** WGSL loading this query row's `name` into registers `${reg}0..` (rows rowDot keeps in memory: none). */
const loadRow = (name: string, reg: string, p: Packing) =>
  p.units <= UNROLL_MAX ? each(p.units, (c) => `let ${reg}${c} = ${name}[row * ${p.units} + ${c}];`, ' ') : '';

/**
 * The inputs a program binds, by shader name: `leading` and the optional mask and bias,
 * leaving out empty ones (a zero head or value size). WGSL drops a binding the shader never
 * reads from its layout, and binding it anyway fails validation.
 */
function bindings(
  leading: [string, TensorInfo][],
  inputs: AttentionInputs,
): { names: string[]; tensors: TensorInfo[] } {
  const all: [string, TensorInfo | undefined][] = [...leading, ['Mask', inputs.mask], ['Bias', inputs.bias]];
  const used = all.filter((e): e is [string, TensorInfo] => !!e[1] && e[1].shape.every((d) => d > 0));
  return { names: used.map(([n]) => n), tensors: used.map(([, t]) => t) };
}

/** Shader-key part for everything compiled in: optional inputs and the row sizes. */
const variantKey = (a: AttentionShape) => `${a.hasMask ? 'm' : ''}${a.biasShape ? 'b' : ''}_${a.D}_${a.Dv}`;

/** Binds each input with its packing (Q, K by head size; V, DY by value size; the rest scalar). */
function packed(program: Program, names: string[], pk: Packing, pv: Packing, output: Packing | null): Program {
  const widths: Record<string, number> = { Q: pk.width, K: pk.width, V: pv.width, DY: pv.width };
  return {
    ...program,
    variableComponents: names.map((n) => widths[n] ?? 1),
    ...(output ? { outputComponent: output.width } : {}),
  };
}

/**
 * P and dS for every (query, key) pair, [rows, 2, keyLen]: one invocation per query row.
 * Pass 1 stores each pair's score and dP = dy·v in the output while accumulating the
 * softmax sum and Σ_j e^(s-m)·dP online; pass 2 turns them into P and dS = P·(dP - Σ P·dP).
 */
function probsAndScoreGrads(a: AttentionShape, inputs: AttentionInputs & { dy: TensorInfo }, backend: unknown) {
  const pk = packing(a.D);
  const pv = packing(a.Dv);
  const { names, tensors } = bindings(
    [
      ['DY', inputs.dy],
      ['Q', inputs.q],
      ['K', inputs.k],
      ['V', inputs.v],
    ],
    inputs,
  );
  const program = groupedProgram(
    `tesseraAttentionScoreGrads_${variantKey(a)}`,
    names,
    [2, a.B * a.H * a.Tq, a.Tk],
    a.B * a.H,
    a.Tq,
    `${QUERY_ROW}
     ${loadRow('Q', 'q', pk)}
     ${loadRow('DY', 'dy', pv)}
     let out = row * uniforms.tk;
     let dsOut = uniforms.pdsHalf + out;
     var m = ${NEG};
     var l = 0.0;
     var t = 0.0;
     for (var j = 0; j < end; j = j + 1) {
       var stored = ${NEG};
       var dp = 0.0;
       if (keyAllowed(b, j)) {
         ${score(a, pk)}
         let vBase = (bh * uniforms.tk + j) * ${pv.units};
         ${rowDot('dyv', pv, 'uniforms.vUnits', 'dy', 'DY', 'V', 'vBase')}
         dp = dyv;
         let mNew = max(m, s);
         let rescale = exp(m - mNew);
         let e = exp(s - mNew);
         l = l * rescale + e;
         t = t * rescale + e * dp;
         m = mNew;
         stored = s;
       }
       result[out + j] = stored;
       result[dsOut + j] = dp;
     }
     // Masked keys hold NEG: exp(NEG - m) is 0, and so is everything in a row with l = 0.
     let inv = select(0.0, 1.0 / l, l > 0.0);
     let meanDp = t * inv;
     for (var j = 0; j < uniforms.tk; j = j + 1) {
       var p = 0.0;
       var ds = 0.0;
       if (j < end) {
         p = exp(result[out + j] - m) * inv;
         ds = p * (result[dsOut + j] - meanDp);
       }
       result[out + j] = p;
       result[dsOut + j] = ds;
     }`,
    UNIFORMS,
    prelude(a.hasMask),
  );
  return storage(backend).runWebGPUProgram(packed(program, names, pk, pv, null), tensors, 'float32', [
    ints(a.B * a.H),
    ints(a.Tq),
    ...uniformValues(a),
  ]);
}

/**
 * Scores in memory ([B·H, Tq, Tk] floats, up to this many bytes per buffer): the products run
 * as ./matmul.ts's register-blocked batched matmuls and a row pass applies mask, bias, causal
 * band and softmax. Past it the forward streams keys through an online softmax instead (one
 * query row per invocation, nothing of size [queries, keys]). TESSERA_WEBGPU_ATTENTION_SCORES_MB
 * sets the limit (0: always stream).
 */
const SCORES_MB = 64;

function scoresFit(a: AttentionShape): boolean {
  const env = typeof process !== 'undefined' ? process.env?.TESSERA_WEBGPU_ATTENTION_SCORES_MB : undefined;
  const mb = env !== undefined && env !== '' && Number.isFinite(Number(env)) ? Number(env) : SCORES_MB;
  return a.B * a.H * a.Tq * a.Tk * 4 <= mb * 2 ** 20;
}

/**
 * C = alpha · op(X)·op(Y) per head, [B, H, M, N]; X from element `xBase` of its buffer;
 * `band` says where a causal mask puts X's zeros (or the unread outputs): see MatMulProblem.
 */
function headProduct(
  backend: unknown,
  a: AttentionShape,
  x: TensorInfo,
  y: TensorInfo,
  [M, N, K]: [number, number, number],
  [transposeA, transposeB]: [boolean, boolean],
  alpha: number,
  xBase: number,
  band: 'kAbove' | 'kBelow' | 'outAbove',
): TensorInfo {
  // An empty sum (a zero head or value size) is zeros, and an empty operand cannot be bound.
  if (M * N === 0 || K === 0) return zeros(backend, [a.B, a.H, M, N]);
  // Causal: the workgroups skip the band's zeros, and one SIMD chunk (8 invocations, 64 rows)
  // per workgroup makes the skipped part finer.
  const problem = batchedProblem([a.B, a.H], M, N, K, transposeA, transposeB, {
    aBase: xBase,
    alpha,
    ...(a.causal ? { band: { mode: band, offset: a.Tk - a.Tq } } : {}),
  });
  // With subgroups: the subgroup kernel, whose workgroups (32 rows) are finer still.
  const subgroup = subgroupSize(backend);
  const tiling = subgroup
    ? autoTiling(problem, subgroup, maxAccumulators(backend))
    : a.causal
      ? { ...DEFAULT_TILING, workgroup: 8 }
      : DEFAULT_TILING;
  const program = matMulProgram(problem, tiling);
  if (typeof program === 'string') {
    throw new TesseraError(`webgpu attention: ${program}; use fewer heads × batch or shorter sequences`);
  }
  return runMatMul(backend, x, y, problem, program);
}

/**
 * The row pass over scores S = scale·q·kᵀ ([B·H·Tq, Tk], one invocation per query row):
 * bias, padding mask and causal band, then the softmax P (zeros for a row with no allowed
 * key). With `dp` (dP = dy·vᵀ) it also writes dS = P ⊙ (dP − Σ P·dP) after P: [2, rows, Tk].
 */
function rowSoftmax(
  a: AttentionShape,
  inputs: AttentionInputs,
  scores: TensorInfo,
  dp: TensorInfo | undefined,
  backend: unknown,
) {
  const leading: [string, TensorInfo][] = [['S', scores]];
  if (dp) leading.push(['DP', dp]);
  const { names, tensors } = bindings(leading, inputs);
  const score = `var s = S[base + j];
      ${a.biasShape ? 's = s + Bias[b * uniforms.biasB + h * uniforms.biasH + qi * uniforms.biasQ + j * uniforms.biasK];' : ''}`;
  const rows = a.B * a.H * a.Tq;
  const program = groupedProgram(
    `tesseraAttentionRowSoftmax_${a.hasMask ? 'm' : ''}${a.biasShape ? 'b' : ''}${dp ? 'g' : ''}`,
    names,
    dp ? [2, rows, a.Tk] : [a.B, a.H, a.Tq, a.Tk],
    a.B * a.H,
    a.Tq,
    `${QUERY_ROW}
     let base = row * uniforms.tk;
     var m = ${NEG};
     for (var j = 0; j < end; j = j + 1) {
       if (keyAllowed(b, j)) { ${score} m = max(m, s); }
     }
     var l = 0.0;
     var t = 0.0;
     for (var j = 0; j < end; j = j + 1) {
       if (keyAllowed(b, j)) {
         ${score}
         let e = exp(s - m);
         l = l + e;
         ${dp ? 't = t + e * DP[base + j];' : ''}
       }
     }
     let inv = select(0.0, 1.0 / l, l > 0.0);
     let meanDp = t * inv;
     for (var j = 0; j < uniforms.tk; j = j + 1) {
       var p = 0.0;
       if (j < end && keyAllowed(b, j)) { ${score} p = exp(s - m) * inv; }
       result[base + j] = p;
       ${dp ? 'result[uniforms.pdsHalf + base + j] = p * (DP[base + j] - meanDp);' : ''}
     }`,
    UNIFORMS,
    prelude(a.hasMask),
  );
  return storage(backend).runWebGPUProgram(program, tensors, 'float32', [
    ints(a.B * a.H),
    ints(a.Tq),
    ...uniformValues(a),
  ]);
}

/** Forward on matmuls: S = scale·q·kᵀ, P = softmax rows, y = P·v. */
function attentionByProducts(a: AttentionShape, inputs: AttentionInputs, backend: unknown): TensorInfo {
  const b = storage(backend);
  const scores = headProduct(backend, a, inputs.q, inputs.k, [a.Tq, a.Tk, a.D], [false, true], a.scale, 0, 'outAbove');
  const probs = rowSoftmax(a, inputs, scores, undefined, backend);
  b.disposeData(scores.dataId);
  const y = headProduct(backend, a, probs, inputs.v, [a.Tq, a.Dv, a.Tk], [false, false], 1, 0, 'kAbove');
  b.disposeData(probs.dataId);
  return y;
}

export const attentionKernels = {
  TesseraAttention: ({ inputs, backend, attrs }) => {
    const a = attentionShape(inputs, attrs);
    const outShape = [a.B, a.H, a.Tq, a.Dv];
    if (a.B * a.H * a.Tq === 0 || a.Tk === 0 || a.Dv === 0) return zeros(backend, outShape);
    if (scoresFit(a)) return attentionByProducts(a, inputs, backend);
    const pk = packing(a.D);
    const pv = packing(a.Dv);
    // Each pass accumulates up to ACC_MAX value units over the whole band; a row with no
    // allowed key ends with l = 0 and writes zeros. The key loop runs to the band end of the
    // workgroup's last query (the same for every invocation: measured ~20% faster on lavapipe
    // than each invocation stopping at its own), and each query skips keys past its band.
    const pass = (units: number[]) => `{
    ${units.map((c) => `var acc${c} = ${zero(pv)};`).join(' ')}
    var m = ${NEG};
    var l = 0.0;
    let bandEnd = keyEnd(lastItem);
    for (var j = 0; j < bandEnd; j = j + 1) {
      if (j < end && keyAllowed(b, j)) {
      ${score(a, pk)}
      if (s > m) {
        let rescale = exp(m - s);
        l = l * rescale;
        ${units.map((c) => `acc${c} = acc${c} * rescale;`).join(' ')}
        m = s;
      }
      let p = exp(s - m);
      l = l + p;
      let vBase = (bh * uniforms.tk + j) * ${pv.units};
      ${units.map((c) => `acc${c} = acc${c} + p * V[vBase + ${c}];`).join(' ')}
      }
    }
    let inv = select(0.0, 1.0 / l, l > 0.0);
    ${units.map((c) => `result[row * ${pv.units} + ${c}] = acc${c} * inv;`).join(' ')}
  }`;
    const { names, tensors } = bindings(
      [
        ['Q', inputs.q],
        ['K', inputs.k],
        ['V', inputs.v],
      ],
      inputs,
    );
    const program = groupedProgram(
      `tesseraAttention_${variantKey(a)}`,
      names,
      outShape,
      a.B * a.H,
      a.Tq,
      `${QUERY_ROW}
     ${loadRow('Q', 'q', pk)}
     ${passes(pv.units).map(pass).join('\n')}`,
      UNIFORMS,
      prelude(a.hasMask),
    );
    return storage(backend).runWebGPUProgram(packed(program, names, pk, pv, pv), tensors, 'float32', [
      ints(a.B * a.H),
      ints(a.Tq),
      ...uniformValues(a),
    ]);
  },

  TesseraAttentionGrad: ({ inputs, backend, attrs }) => {
    const a = attentionShape(inputs, attrs);
    const { B, H, Tq, Tk, D, Dv } = a;
    const dbiasShape = a.biasShape ?? [B, H, Tq, Tk];
    if (B * H * Tq === 0 || Tk === 0) {
      return [
        zeros(backend, [B, H, Tq, D]),
        zeros(backend, [B, H, Tk, D]),
        zeros(backend, [B, H, Tk, Dv]),
        zeros(backend, dbiasShape),
      ];
    }
    const b = storage(backend);
    // [2, B·H·Tq, Tk]: P, then dS. From S = scale·q·kᵀ and dP = dy·vᵀ as matmuls and a row
    // pass when the scores fit; else one row loop computes both.
    let pds: TensorInfo;
    if (scoresFit(a)) {
      const scores = headProduct(backend, a, inputs.q, inputs.k, [Tq, Tk, D], [false, true], a.scale, 0, 'outAbove');
      const dp = headProduct(backend, a, inputs.dy, inputs.v, [Tq, Tk, Dv], [false, true], 1, 0, 'outAbove');
      pds = rowSoftmax(a, inputs, scores, dp, backend);
      b.disposeData(scores.dataId);
      b.disposeData(dp.dataId);
    } else {
      pds = probsAndScoreGrads(a, inputs, backend);
    }
    const values = uniformValues(a);
    // dq = scale·dS·k, dk = scale·dSᵀ·q, dv = Pᵀ·dy: batched matmuls over the heads, reading P
    // and dS in place. P and dS are zero past each causal band, so the products skip nothing
    // that matters; ./matmul.ts's register blocks do ~4× the multiply-adds per load of a row
    // loop, more than the causal half they give up.
    const half = B * H * Tq * Tk;
    const dq = headProduct(backend, a, pds, inputs.k, [Tq, D, Tk], [false, false], a.scale, half, 'kAbove');
    const dk = headProduct(backend, a, pds, inputs.q, [Tk, D, Tq], [true, false], a.scale, half, 'kBelow');
    const dv = headProduct(backend, a, pds, inputs.dy, [Tk, Dv, Tq], [true, false], 1, 0, 'kBelow');
    const broadcast = dbiasShape.some((n, i) => n === 1 && [B, H, Tq, Tk][i]! > 1);
    // Without a bias, or with a full-shape one, dbias is dS itself (a strided copy).
    const dbias = b.runWebGPUProgram(
      elementwise(
        `tesseraAttentionDbias_${broadcast ? 'sum' : 'copy'}`,
        ['PdS'],
        dbiasShape,
        broadcast
          ? `let at = getCoordsFromIndex(i);
           var acc = 0.0;
           for (var bb = at.x; bb < at.x + uniforms.sumB; bb = bb + 1) {
             for (var hh = at.y; hh < at.y + uniforms.sumH; hh = hh + 1) {
               for (var qq = at.z; qq < at.z + uniforms.sumQ; qq = qq + 1) {
                 let rowBase = uniforms.pdsHalf + ((bb * uniforms.heads + hh) * uniforms.tq + qq) * uniforms.tk;
                 for (var kk = at.w; kk < at.w + uniforms.sumK; kk = kk + 1) { acc = acc + PdS[rowBase + kk]; }
               }
             }
           }
           v = acc;`
          : 'v = PdS[uniforms.pdsHalf + i];',
        UNIFORMS,
      ),
      [pds],
      'float32',
      values,
    );
    b.disposeData(pds.dataId);
    return [dq, dk, dv, dbias];
  },
} satisfies Partial<FusedKernelTable>;
