/**
 * WGSL kernels for softmax cross-entropy (ignore index, mean or sum) and its gradient.
 */
import type { FusedKernelTable } from '@tessera/tensor-core';
import { groupedProgram, ints, type Program, ROW_WG, rowProgram, rowsCols, storage, zeros } from './program.js';

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

export const crossEntropyKernels = {
  // Labels outside [0, V) that are not the ignore index cannot raise here (that needs a
  // synchronous read); they pick nothing, as the reference composition's one-hot does.
  TesseraSoftmaxCrossEntropy: ({ inputs, backend, attrs }) => {
    const logits = inputs.logits;
    const labels = inputs.labels;
    const { rows, cols } = rowsCols(logits.shape);
    const ignore = attrs.ignoreIndex;
    const mean = attrs.reduction === 'mean';
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
  },

  TesseraSoftmaxCrossEntropyGrad: ({ inputs, backend, attrs }) => {
    const logits = inputs.logits;
    const labels = inputs.labels;
    const { rows, cols } = rowsCols(logits.shape);
    const ignore = attrs.ignoreIndex;
    const mean = attrs.reduction === 'mean';
    const b = storage(backend);
    if (rows === 0 || cols === 0) return zeros(backend, logits.shape);
    const scale = b.runWebGPUProgram(
      normalised(`tesseraCrossEntropyScale_${mean}`, ['DY', 'Labels'], 'let num = DY[0];', mean),
      [inputs.dy, labels],
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
  },
} satisfies Partial<FusedKernelTable>;
