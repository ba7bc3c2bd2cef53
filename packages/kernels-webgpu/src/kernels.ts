/**
 * WGSL kernels for Tessera's fused ops on tfjs-backend-webgpu's storage, forward and backward:
 * GELU (erf, tanh), softmax cross-entropy and the AdamW update here; layer norm and RMS norm
 * in ./norms.ts, attention in ./attention.ts; program plumbing in ./program.ts.
 */
import type { KernelFunc, TensorInfo } from '@tessera/tensor-core/tfjs';
import { attentionGradKernel, attentionKernel } from './attention.js';
import { layerNormGradKernel, layerNormKernel, rmsNormGradKernel, rmsNormKernel } from './norms.js';
import {
  elementwise,
  f32,
  groupedProgram,
  ints,
  type Program,
  ROW_WG,
  rowProgram,
  rowsCols,
  storage,
  zeros,
} from './program.js';

// ---- GELU --------------------------------------------------------------------------------

// Normal CDF through erfc (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7), evaluated on the
// side where it does not cancel, so Φ(x) keeps relative accuracy for negative x.
const GELU_PRELUDE = `
  fn erfcPos(a : f32) -> f32 {
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return poly * exp(-a * a);
  }
  fn normCdf(x : f32) -> f32 {
    let z = x * 0.70710678118654752;
    if (z >= 0.0) { return 1.0 - 0.5 * erfcPos(z); }
    return 0.5 * erfcPos(-z);
  }
  fn tanhArg(x : f32) -> f32 {
    return clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -15.0, 15.0);
  }`;

export const geluKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const x = inputs.x!;
  const tanhForm = attrs!.approximate === 'tanh';
  const body = tanhForm
    ? 'let xi = X[i]; v = 0.5 * xi * (1.0 + tanh(tanhArg(xi)));'
    : 'let xi = X[i]; v = xi * normCdf(xi);';
  const program = elementwise(`tesseraGelu_${tanhForm ? 'tanh' : 'erf'}`, ['X'], x.shape, body, '', GELU_PRELUDE);
  return storage(backend).runWebGPUProgram(program, [x], 'float32');
};

export const geluGradKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const x = inputs.x!;
  const tanhForm = attrs!.approximate === 'tanh';
  const body = tanhForm
    ? `let xi = X[i];
       let t = tanh(tanhArg(xi));
       v = DY[i] * (0.5 * (1.0 + t) + 0.5 * xi * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * xi * xi));`
    : `let xi = X[i];
       v = DY[i] * (normCdf(xi) + xi * 0.3989422804014327 * exp(-0.5 * xi * xi));`;
  const program = elementwise(
    `tesseraGeluGrad_${tanhForm ? 'tanh' : 'erf'}`,
    ['DY', 'X'],
    x.shape,
    body,
    '',
    GELU_PRELUDE,
  );
  return storage(backend).runWebGPUProgram(program, [inputs.dy!, x], 'float32');
};

// ---- Softmax cross-entropy -------------------------------------------------------------

/**
 * One invocation per row of logits (looping over the vocabulary: see norms.ts for why not a
 * workgroup per row), with the row's log-sum-exp (max-shifted) `lse`, label `y` and whether
 * it is `counted` (not the ignore index) in scope before `body`.
 */
function logitRows(key: string, inputs: string[], shape: number[], rows: number, body: string): Program {
  return groupedProgram(
    key,
    inputs,
    shape,
    1,
    rows,
    `let row = item;
     let cols = uniforms.cols;
     let base = row * cols;
     var rowMax = -3.402823e+38;
     for (var c = 0; c < cols; c = c + 1) { rowMax = max(rowMax, L[base + c]); }
     var se = 0.0;
     for (var c = 0; c < cols; c = c + 1) { se = se + exp(L[base + c] - rowMax); }
     let lse = rowMax + log(se);
     let y = Labels[row];
     let counted = y != uniforms.ignoreIndex;
     ${body}`,
    'rows : i32, cols : i32, ignoreIndex : i32, n : i32,',
  );
}

/**
 * Counts the labels that are not the ignore index and writes `numerator / norm` (norm: the
 * count, at least 1, for "mean"; 1 for "sum"); one workgroup. `numerator` is WGSL.
 */
function normalised(key: string, inputs: string[], numerator: string, mean: boolean): Program {
  return rowProgram(
    key,
    inputs,
    [1],
    1,
    `var k = 0.0;
     for (var c = tid; c < uniforms.n; c = c + ${ROW_WG}) { if (Labels[c] != uniforms.ignoreIndex) { k = k + 1.0; } }
     let count = blockSum(k);
     ${numerator}
     if (valid && tid == 0) { result[0] = num / ${mean ? 'max(count, 1.0)' : '1.0'}; }`,
    'ignoreIndex : i32, n : i32,',
  );
}

// Labels outside [0, V) that are not the ignore index cannot raise here (that needs a
// synchronous read); they pick nothing, as the reference composition's one-hot does.
export const crossEntropyKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const logits = inputs.logits!;
  const labels = inputs.labels!;
  const { rows, cols } = rowsCols(logits.shape);
  const ignore = attrs!.ignoreIndex as number;
  const mean = attrs!.reduction === 'mean';
  const b = storage(backend);
  if (rows === 0) return { ...zeros(backend, [1]), shape: [] };
  const rowLoss = b.runWebGPUProgram(
    logitRows(
      'tesseraCrossEntropyRows',
      ['L', 'Labels'],
      [rows],
      rows,
      `let inRange = y >= 0 && y < cols;
       let picked = select(0.0, L[base + clamp(y, 0, cols - 1)], inRange);
       result[row] = select(0.0, lse - picked, counted);`,
    ),
    [logits, labels],
    'float32',
    [ints(1), ints(rows), ints(rows), ints(cols), ints(ignore), ints(rows)],
  );
  const loss = b.runWebGPUProgram(
    normalised(
      `tesseraCrossEntropyTotal_${mean}`,
      ['RowLoss', 'Labels'],
      `var t = 0.0;
       for (var c = tid; c < uniforms.n; c = c + ${ROW_WG}) { t = t + RowLoss[c]; }
       let num = blockSum(t);`,
      mean,
    ),
    [rowLoss, labels],
    'float32',
    [ints(1), ints(rows), ints(ignore), ints(rows)],
  );
  b.disposeData(rowLoss.dataId);
  return { ...loss, shape: [] };
};

export const crossEntropyGradKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const logits = inputs.logits!;
  const labels = inputs.labels!;
  const { rows, cols } = rowsCols(logits.shape);
  const ignore = attrs!.ignoreIndex as number;
  const mean = attrs!.reduction === 'mean';
  const b = storage(backend);
  if (rows === 0 || cols === 0) return zeros(backend, logits.shape);
  const scale = b.runWebGPUProgram(
    normalised(`tesseraCrossEntropyScale_${mean}`, ['DY', 'Labels'], 'let num = DY[0];', mean),
    [inputs.dy!, labels],
    'float32',
    [ints(1), ints(rows), ints(ignore), ints(rows)],
  );
  const d = b.runWebGPUProgram(
    logitRows(
      'tesseraCrossEntropyGrad',
      ['L', 'Labels', 'Scale'],
      logits.shape,
      rows,
      `let s = select(0.0, Scale[0], counted);
       for (var c = 0; c < cols; c = c + 1) {
         result[base + c] = (exp(L[base + c] - lse) - select(0.0, 1.0, c == y)) * s;
       }`,
    ),
    [logits, labels, scale],
    'float32',
    [ints(1), ints(rows), ints(rows), ints(cols), ints(ignore), ints(rows)],
  );
  b.disposeData(scale.dataId);
  return d;
};

// ---- AdamW --------------------------------------------------------------------------------

export const adamwKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const a = attrs as unknown as {
    lr: number;
    beta1: number;
    beta2: number;
    eps: number;
    weightDecay: number;
    step: number;
  };
  const shape = inputs.param!.shape;
  // 1 - beta in float64 on the host: in f32 on the GPU, 1 - 0.999 is off by 1.3e-5 relative.
  const uniforms =
    'beta1 : f32, beta2 : f32, oneMinusBeta1 : f32, oneMinusBeta2 : f32, decay : f32, stepSize : f32, sqrtBc2 : f32, eps : f32,';
  const values = [
    f32(a.beta1),
    f32(a.beta2),
    f32(1 - a.beta1),
    f32(1 - a.beta2),
    f32(1 - a.lr * a.weightDecay),
    f32(a.lr / (1 - a.beta1 ** a.step)),
    f32(Math.sqrt(1 - a.beta2 ** a.step)),
    f32(a.eps),
  ];
  const m1 = 'uniforms.beta1 * M[i] + uniforms.oneMinusBeta1 * G[i]';
  const v1 = 'uniforms.beta2 * V[i] + uniforms.oneMinusBeta2 * G[i] * G[i]';
  // Each program names only the inputs it reads: WGSL drops unused bindings from the layout.
  const run = (which: string, names: string[], ins: TensorInfo[], body: string) =>
    storage(backend).runWebGPUProgram(
      elementwise(`tesseraAdamW_${which}`, names, shape, body, uniforms),
      ins,
      'float32',
      values,
    );
  const { param, grad, m, v } = inputs as Record<string, TensorInfo>;
  return [
    run(
      'param',
      ['P', 'G', 'M', 'V'],
      [param!, grad!, m!, v!],
      `v = P[i] * uniforms.decay - (uniforms.stepSize * (${m1})) / (sqrt(${v1}) / uniforms.sqrtBc2 + uniforms.eps);`,
    ),
    run('m', ['G', 'M'], [grad!, m!], `v = ${m1};`),
    run('v', ['G', 'V'], [grad!, v!], `v = ${v1};`),
  ];
};

/** Tessera's fused-op kernels on tfjs-backend-webgpu storage, by op name. */
export const webgpuKernels: Readonly<Record<string, KernelFunc>> = {
  TesseraGelu: geluKernel,
  TesseraGeluGrad: geluGradKernel,
  TesseraLayerNorm: layerNormKernel,
  TesseraLayerNormGrad: layerNormGradKernel,
  TesseraRmsNorm: rmsNormKernel,
  TesseraRmsNormGrad: rmsNormGradKernel,
  TesseraSoftmaxCrossEntropy: crossEntropyKernel,
  TesseraSoftmaxCrossEntropyGrad: crossEntropyGradKernel,
  TesseraAttention: attentionKernel,
  TesseraAttentionGrad: attentionGradKernel,
  TesseraAdamW: adamwKernel,
};
