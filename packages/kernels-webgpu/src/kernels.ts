/**
 * WGSL kernels for Tessera's fused ops on tfjs-backend-webgpu's storage: GELU (erf, tanh),
 * layer norm, RMS norm, softmax cross-entropy (forward and backward) and the AdamW update. Each is a tfjs
 * program run through the backend's own `runWebGPUProgram`, so buffers, uniforms and
 * pipeline caching are upstream's. Shaders index the raw storage arrays (`result`, and
 * one array per input named in `variableNames`), with row/column counts as uniforms.
 *
 * Ops without a kernel here (attention) run their reference compositions on upstream
 * kernels: correct, not fused.
 */
import { webgpu_util } from '@tensorflow/tfjs-backend-webgpu';
import type { KernelFunc, TensorInfo } from '@tessera/tensor-core/tfjs';

interface Program {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  size?: boolean;
  uniforms?: string;
  getUserCode(): string;
}

type Uniform = { type: 'float32' | 'int32'; data: number[] };

interface WebGpuStorage {
  runWebGPUProgram(program: Program, inputs: TensorInfo[], dtype: 'float32', uniforms?: Uniform[]): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

const storage = (backend: unknown) => backend as WebGpuStorage;
const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** An elementwise program: one invocation per output element. `body` sets `v` from index `i`. */
function elementwise(
  key: string,
  inputs: string[],
  shape: number[],
  body: string,
  uniforms = '',
  prelude = '',
): Program {
  const workgroupSize: [number, number, number] = [128, 1, 1];
  const dispatchLayout = webgpu_util.flatDispatchLayout(shape);
  return {
    variableNames: inputs,
    outputShape: shape,
    shaderKey: key,
    dispatchLayout,
    dispatch: webgpu_util.computeDispatch(dispatchLayout, shape, workgroupSize) as [number, number, number],
    workgroupSize,
    size: true,
    ...(uniforms ? { uniforms } : {}),
    getUserCode: () => `
      ${prelude}
      fn main(index : i32) {
        if (index < uniforms.size) {
          let i = index;
          var v = 0.0;
          ${body}
          result[i] = v;
        }
      }`,
  };
}

/** Reductions over the last axis: one workgroup per row, a tree sum in workgroup memory. */
const ROW_WG = 64;
const BLOCK_SUM = `
  var<workgroup> red : array<f32, ${ROW_WG}>;
  fn blockSum(v : f32) -> f32 {
    let tid = i32(localId.x);
    red[tid] = v;
    workgroupBarrier();
    for (var s = ${ROW_WG / 2}; s > 0; s = s >> 1) {
      if (tid < s) { red[tid] = red[tid] + red[tid + s]; }
      workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
  }
  fn blockMax(v : f32) -> f32 {
    let tid = i32(localId.x);
    red[tid] = v;
    workgroupBarrier();
    for (var s = ${ROW_WG / 2}; s > 0; s = s >> 1) {
      if (tid < s) { red[tid] = max(red[tid], red[tid + s]); }
      workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
  }`;

/**
 * A row program over [rows, cols] (the output may have any shape). `body` runs once per
 * workgroup with `row` (clamped in range), `valid`, `tid`, `cols` and blockSum() in scope;
 * barriers stay in uniform control flow, so writes are guarded by `valid`.
 */
function rowProgram(
  key: string,
  inputs: string[],
  shape: number[],
  rows: number,
  body: string,
  uniforms = '',
): Program {
  return {
    variableNames: inputs,
    outputShape: shape,
    shaderKey: key,
    dispatchLayout: webgpu_util.flatDispatchLayout(shape),
    dispatch: [Math.max(rows, 1), 1, 1],
    workgroupSize: [ROW_WG, 1, 1],
    uniforms: `rows : i32, cols : i32, ${uniforms}`,
    getUserCode: () => `
      ${BLOCK_SUM}
      fn main(index : i32) {
        let tid = i32(localId.x);
        let cols = uniforms.cols;
        let valid = index / ${ROW_WG} < uniforms.rows;
        let row = min(index / ${ROW_WG}, uniforms.rows - 1);
        let base = row * cols;
        ${body}
      }`,
  };
}

/** Sums over rows per column (dgamma, dbeta): one invocation per column. */
function columnProgram(key: string, inputs: string[], cols: number, body: string, uniforms = ''): Program {
  return {
    ...elementwise(key, inputs, [cols], '', uniforms),
    uniforms: `rows : i32, cols : i32, ${uniforms}`,
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let c = index;
          let cols = uniforms.cols;
          var acc = 0.0;
          for (var r = 0; r < uniforms.rows; r = r + 1) {
            let i = r * cols + c;
            ${body}
          }
          result[c] = acc;
        }
      }`,
  };
}

function rowsCols(shape: number[]): { rows: number; cols: number } {
  const cols = shape[shape.length - 1] ?? 1;
  return { rows: cols === 0 ? 0 : sizeOf(shape) / cols, cols };
}

/** All-zero output of `shape` (the column sums over zero rows). */
function zeros(backend: unknown, shape: number[]): TensorInfo {
  return storage(backend).runWebGPUProgram(elementwise('tesseraZeros', [], shape, 'v = 0.0;'), [], 'float32');
}

const ints = (...data: number[]): Uniform => ({ type: 'int32', data });
const f32 = (...data: number[]): Uniform => ({ type: 'float32', data });

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

// ---- Layer norm and RMS norm -------------------------------------------------------------

/** Two-pass row statistics (mean, then variance about it), as the cpu reference does. */
const LN_STATS = `
  var s = 0.0;
  for (var c = tid; c < cols; c = c + ${ROW_WG}) { s = s + X[base + c]; }
  let mean = blockSum(s) / f32(cols);
  var q = 0.0;
  for (var c = tid; c < cols; c = c + ${ROW_WG}) { let d = X[base + c] - mean; q = q + d * d; }
  let rstd = inverseSqrt(blockSum(q) / f32(cols) + uniforms.eps);`;

const RMS_STATS = `
  var q = 0.0;
  for (var c = tid; c < cols; c = c + ${ROW_WG}) { let xv = X[base + c]; q = q + xv * xv; }
  let inv = inverseSqrt(blockSum(q) / f32(cols) + uniforms.eps);`;

export const layerNormKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const x = inputs.x!;
  const { rows, cols } = rowsCols(x.shape);
  const hasBeta = !!inputs.beta;
  const program = rowProgram(
    `tesseraLayerNorm_${hasBeta}`,
    hasBeta ? ['X', 'Gamma', 'Beta'] : ['X', 'Gamma'],
    x.shape,
    rows,
    `${LN_STATS}
     if (valid) {
       for (var c = tid; c < cols; c = c + ${ROW_WG}) {
         result[base + c] = (X[base + c] - mean) * rstd * Gamma[c]${hasBeta ? ' + Beta[c]' : ''};
       }
     }`,
    'eps : f32,',
  );
  const ins = hasBeta ? [x, inputs.gamma!, inputs.beta!] : [x, inputs.gamma!];
  return storage(backend).runWebGPUProgram(program, ins, 'float32', [
    ints(rows),
    ints(cols),
    f32(attrs!.eps as number),
  ]);
};

export const layerNormGradKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const x = inputs.x!;
  const dy = inputs.dy!;
  const gamma = inputs.gamma!;
  const { rows, cols } = rowsCols(x.shape);
  const eps = attrs!.eps as number;
  if (rows === 0 || cols === 0) return [zeros(backend, x.shape), zeros(backend, [cols]), zeros(backend, [cols])];
  const b = storage(backend);
  const dims = [ints(rows), ints(cols), f32(eps)];
  // Per-row mean and rstd, [rows, 2]; shared by dx, dgamma.
  const stats = b.runWebGPUProgram(
    rowProgram(
      'tesseraLayerNormStats',
      ['X'],
      [Math.max(rows, 1), 2],
      rows,
      `${LN_STATS}
       if (valid && tid == 0) { result[row * 2] = mean; result[row * 2 + 1] = rstd; }`,
      'eps : f32,',
    ),
    [x],
    'float32',
    dims,
  );
  const dx = b.runWebGPUProgram(
    rowProgram(
      'tesseraLayerNormDx',
      ['DY', 'X', 'Gamma', 'Stats'],
      x.shape,
      rows,
      `let mean = Stats[row * 2];
       let rstd = Stats[row * 2 + 1];
       var a = 0.0;
       var bsum = 0.0;
       for (var c = tid; c < cols; c = c + ${ROW_WG}) {
         let g = DY[base + c] * Gamma[c];
         a = a + g;
         bsum = bsum + g * (X[base + c] - mean) * rstd;
       }
       let meanDxHat = blockSum(a) / f32(cols);
       let meanDxHatXHat = blockSum(bsum) / f32(cols);
       if (valid) {
         for (var c = tid; c < cols; c = c + ${ROW_WG}) {
           let xHat = (X[base + c] - mean) * rstd;
           result[base + c] = rstd * (DY[base + c] * Gamma[c] - meanDxHat - xHat * meanDxHatXHat);
         }
       }`,
      'eps : f32,',
    ),
    [dy, x, gamma, stats],
    'float32',
    dims,
  );
  const dgamma = b.runWebGPUProgram(
    columnProgram(
      'tesseraLayerNormDgamma',
      ['DY', 'X', 'Stats'],
      cols,
      'acc = acc + DY[i] * (X[i] - Stats[r * 2]) * Stats[r * 2 + 1];',
      'eps : f32,',
    ),
    [dy, x, stats],
    'float32',
    dims,
  );
  const dbeta = b.runWebGPUProgram(
    columnProgram('tesseraLayerNormDbeta', ['DY'], cols, 'acc = acc + DY[i];', 'eps : f32,'),
    [dy],
    'float32',
    dims,
  );
  b.disposeData(stats.dataId);
  return [dx, dgamma, dbeta];
};

export const rmsNormKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const x = inputs.x!;
  const { rows, cols } = rowsCols(x.shape);
  const program = rowProgram(
    'tesseraRmsNorm',
    ['X', 'Gamma'],
    x.shape,
    rows,
    `${RMS_STATS}
     if (valid) {
       for (var c = tid; c < cols; c = c + ${ROW_WG}) { result[base + c] = X[base + c] * inv * Gamma[c]; }
     }`,
    'eps : f32,',
  );
  return storage(backend).runWebGPUProgram(program, [x, inputs.gamma!], 'float32', [
    ints(rows),
    ints(cols),
    f32(attrs!.eps as number),
  ]);
};

export const rmsNormGradKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const x = inputs.x!;
  const dy = inputs.dy!;
  const gamma = inputs.gamma!;
  const { rows, cols } = rowsCols(x.shape);
  if (rows === 0 || cols === 0) return [zeros(backend, x.shape), zeros(backend, [cols])];
  const b = storage(backend);
  const dims = [ints(rows), ints(cols), f32(attrs!.eps as number)];
  const stats = b.runWebGPUProgram(
    rowProgram(
      'tesseraRmsNormStats',
      ['X'],
      [Math.max(rows, 1)],
      rows,
      `${RMS_STATS}
       if (valid && tid == 0) { result[row] = inv; }`,
      'eps : f32,',
    ),
    [x],
    'float32',
    dims,
  );
  const dx = b.runWebGPUProgram(
    rowProgram(
      'tesseraRmsNormDx',
      ['DY', 'X', 'Gamma', 'Inv'],
      x.shape,
      rows,
      `let inv = Inv[row];
       var a = 0.0;
       for (var c = tid; c < cols; c = c + ${ROW_WG}) { a = a + DY[base + c] * Gamma[c] * X[base + c]; }
       let m = blockSum(a) / f32(cols);
       if (valid) {
         for (var c = tid; c < cols; c = c + ${ROW_WG}) {
           result[base + c] = inv * DY[base + c] * Gamma[c] - X[base + c] * inv * inv * inv * m;
         }
       }`,
      'eps : f32,',
    ),
    [dy, x, gamma, stats],
    'float32',
    dims,
  );
  const dgamma = b.runWebGPUProgram(
    columnProgram('tesseraRmsNormDgamma', ['DY', 'X', 'Inv'], cols, 'acc = acc + DY[i] * X[i] * Inv[r];', 'eps : f32,'),
    [dy, x, stats],
    'float32',
    dims,
  );
  b.disposeData(stats.dataId);
  return [dx, dgamma];
};

// ---- Softmax cross-entropy -------------------------------------------------------------

/** Row log-sum-exp (max-shifted) of L over the row at `base`. */
const ROW_LSE = `
  var mx = -3.402823e+38;
  for (var c = tid; c < cols; c = c + ${ROW_WG}) { mx = max(mx, L[base + c]); }
  let rowMax = blockMax(mx);
  var se = 0.0;
  for (var c = tid; c < cols; c = c + ${ROW_WG}) { se = se + exp(L[base + c] - rowMax); }
  let lse = rowMax + log(blockSum(se));
  let y = Labels[row];
  let counted = y != uniforms.ignoreIndex;`;

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
    rowProgram(
      'tesseraCrossEntropyRows',
      ['L', 'Labels'],
      [rows],
      rows,
      `${ROW_LSE}
       let inRange = y >= 0 && y < cols;
       let picked = select(0.0, L[base + clamp(y, 0, cols - 1)], inRange);
       if (valid && tid == 0) { result[row] = select(0.0, lse - picked, counted); }`,
      'ignoreIndex : i32, n : i32,',
    ),
    [logits, labels],
    'float32',
    [ints(rows), ints(cols), ints(ignore), ints(rows)],
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
    rowProgram(
      'tesseraCrossEntropyGrad',
      ['L', 'Labels', 'Scale'],
      logits.shape,
      rows,
      `${ROW_LSE}
       let s = select(0.0, Scale[0], counted);
       if (valid) {
         for (var c = tid; c < cols; c = c + ${ROW_WG}) {
           result[base + c] = (exp(L[base + c] - lse) - select(0.0, 1.0, c == y)) * s;
         }
       }`,
      'ignoreIndex : i32, n : i32,',
    ),
    [logits, labels, scale],
    'float32',
    [ints(rows), ints(cols), ints(ignore), ints(rows)],
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
  TesseraAdamW: adamwKernel,
};
