/**
 * WGSL kernels for layer norm and RMS norm over the last axis, forward and backward.
 *
 * Each row is one invocation looping over its channels (vec4 at a time when the width allows):
 * statistics in two passes (mean, then the variance about it, as the cpu reference), then the
 * output. On lavapipe a workgroup barrier switches between SIMD chunks, so a workgroup
 * cooperating on a row through tree sums was slower than one invocation per row.
 *
 * dgamma and dbeta are column sums over all rows, done in two passes: partial sums over blocks
 * of COLUMN_BLOCK rows ([blocks, channels], one invocation per block and channel), then one
 * invocation per channel adds its blocks — rather than one invocation walking every row.
 */
import type { FusedKernelTable } from '@tessera/tensor-core';
import type { TensorInfo } from '@tessera/tensor-core/tfjs';
import {
  f32,
  groupedProgram,
  ints,
  type Packing,
  type Program,
  packing,
  rowsCols,
  storage,
  total,
  type Uniform,
  zero,
  zeros,
} from './program.js';

/** Rows each first-pass invocation of a column sum adds. */
const COLUMN_BLOCK = 32;

const UNIFORMS = 'rows : i32, cols : i32, units : i32, eps : f32,';

function dims(rows: number, cols: number, p: Packing, eps: number): Uniform[] {
  return [ints(rows), ints(cols), ints(p.units), f32(eps)];
}

/** One invocation per row: `row`, and `base`, the row's first packed unit, are in scope. */
function rowKernel(key: string, names: string[], shape: number[], rows: number, p: Packing, body: string): Program {
  return groupedProgram(
    `${key}_${p.width}`,
    names,
    shape,
    1,
    rows,
    `let row = item;
     let base = row * uniforms.units;
     ${body}`,
    UNIFORMS,
  );
}

/** Binds the row-shaped inputs (X, DY, Gamma, Beta) and, when `rowOutput`, the result with `p`'s packing. */
function packed(program: Program, p: Packing, rowOutput: boolean): Program {
  const rowShaped = new Set(['X', 'DY', 'Gamma', 'Beta', 'Partial']);
  return {
    ...program,
    variableComponents: program.variableNames.map((n) => (rowShaped.has(n) ? p.width : 1)),
    outputComponent: rowOutput ? p.width : 1,
  };
}

/** Two-pass statistics of row `row`: `mean` and `rstd`. */
function layerNormStats(p: Packing): string {
  return `
    var s = ${zero(p)};
    for (var c = 0; c < uniforms.units; c = c + 1) { s = s + X[base + c]; }
    let mean = ${total(p, 's')} / f32(uniforms.cols);
    var q = ${zero(p)};
    for (var c = 0; c < uniforms.units; c = c + 1) { let d = X[base + c] - mean; q = q + d * d; }
    let rstd = inverseSqrt(${total(p, 'q')} / f32(uniforms.cols) + uniforms.eps);`;
}

/** `inv` = 1 / sqrt(mean(x²) + eps) of row `row`. */
function rmsStats(p: Packing): string {
  return `
    var q = ${zero(p)};
    for (var c = 0; c < uniforms.units; c = c + 1) { let xv = X[base + c]; q = q + xv * xv; }
    let inv = inverseSqrt(${total(p, 'q')} / f32(uniforms.cols) + uniforms.eps);`;
}

/**
 * Σ over rows of `term` per channel, [cols]: `term` is packed WGSL of `r` (the row), `c` (the
 * channel unit) and `base` (row r's first unit). Two passes when there is more than one block.
 */
function columnSums(
  backend: unknown,
  key: string,
  names: string[],
  ins: TensorInfo[],
  rows: number,
  cols: number,
  p: Packing,
  term: string,
): TensorInfo {
  const b = storage(backend);
  const blocks = Math.ceil(rows / COLUMN_BLOCK);
  const values = dims(rows, cols, p, 0);
  const partial = b.runWebGPUProgram(
    packed(
      groupedProgram(
        `${key}Partial_${p.width}`,
        names,
        [blocks, cols],
        blocks,
        p.units,
        `let c = item;
         var acc = ${zero(p)};
         for (var r = group * ${COLUMN_BLOCK}; r < min(uniforms.rows, (group + 1) * ${COLUMN_BLOCK}); r = r + 1) {
           let base = r * uniforms.units;
           acc = acc + ${term};
         }
         result[group * uniforms.units + c] = acc;`,
        UNIFORMS,
      ),
      p,
      true,
    ),
    ins,
    'float32',
    [ints(blocks), ints(p.units), ...values],
  );
  if (blocks === 1) return { ...partial, shape: [cols] };
  const sums = b.runWebGPUProgram(
    packed(
      groupedProgram(
        `tesseraColumnSum_${p.width}`,
        ['Partial'],
        [cols],
        1,
        p.units,
        `let c = item;
         var acc = ${zero(p)};
         for (var g = 0; g < uniforms.rows; g = g + 1) { acc = acc + Partial[g * uniforms.units + c]; }
         result[c] = acc;`,
        UNIFORMS,
      ),
      p,
      true,
    ),
    [partial],
    'float32',
    // Its rows are the blocks.
    [ints(1), ints(p.units), ...dims(blocks, cols, p, 0)],
  );
  b.disposeData(partial.dataId);
  return sums;
}

export const normKernels = {
  TesseraLayerNorm: ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const { rows, cols } = rowsCols(x.shape);
    const p = packing(cols);
    const hasBeta = !!inputs.beta;
    const names = hasBeta ? ['X', 'Gamma', 'Beta'] : ['X', 'Gamma'];
    const program = rowKernel(
      `tesseraLayerNorm_${hasBeta}`,
      names,
      x.shape,
      rows,
      p,
      `${layerNormStats(p)}
     for (var c = 0; c < uniforms.units; c = c + 1) {
       result[base + c] = (X[base + c] - mean) * rstd * Gamma[c]${hasBeta ? ' + Beta[c]' : ''};
     }`,
    );
    const ins = inputs.beta ? [x, inputs.gamma, inputs.beta] : [x, inputs.gamma];
    return storage(backend).runWebGPUProgram(packed(program, p, true), ins, 'float32', [
      ints(1),
      ints(rows),
      ...dims(rows, cols, p, attrs.eps),
    ]);
  },

  TesseraLayerNormGrad: ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const dy = inputs.dy;
    const gamma = inputs.gamma;
    const { rows, cols } = rowsCols(x.shape);
    if (rows === 0 || cols === 0) return [zeros(backend, x.shape), zeros(backend, [cols]), zeros(backend, [cols])];
    const p = packing(cols);
    const b = storage(backend);
    const values = [ints(1), ints(rows), ...dims(rows, cols, p, attrs.eps)];
    // Per-row mean and rstd, [rows, 2]; shared by dx and dgamma.
    const stats = b.runWebGPUProgram(
      packed(
        rowKernel(
          'tesseraLayerNormStats',
          ['X'],
          [rows, 2],
          rows,
          p,
          `${layerNormStats(p)}
         result[row * 2] = mean;
         result[row * 2 + 1] = rstd;`,
        ),
        p,
        false,
      ),
      [x],
      'float32',
      values,
    );
    const dx = b.runWebGPUProgram(
      packed(
        rowKernel(
          'tesseraLayerNormDx',
          ['DY', 'X', 'Gamma', 'Stats'],
          x.shape,
          rows,
          p,
          `let mean = Stats[row * 2];
         let rstd = Stats[row * 2 + 1];
         var a = ${zero(p)};
         var bsum = ${zero(p)};
         for (var c = 0; c < uniforms.units; c = c + 1) {
           let g = DY[base + c] * Gamma[c];
           a = a + g;
           bsum = bsum + g * (X[base + c] - mean) * rstd;
         }
         let meanDxHat = ${total(p, 'a')} / f32(uniforms.cols);
         let meanDxHatXHat = ${total(p, 'bsum')} / f32(uniforms.cols);
         for (var c = 0; c < uniforms.units; c = c + 1) {
           let xHat = (X[base + c] - mean) * rstd;
           result[base + c] = rstd * (DY[base + c] * Gamma[c] - meanDxHat - xHat * meanDxHatXHat);
         }`,
        ),
        p,
        true,
      ),
      [dy, x, gamma, stats],
      'float32',
      values,
    );
    const dgamma = columnSums(
      backend,
      'tesseraLayerNormDgamma',
      ['DY', 'X', 'Stats'],
      [dy, x, stats],
      rows,
      cols,
      p,
      'DY[base + c] * (X[base + c] - Stats[r * 2]) * Stats[r * 2 + 1]',
    );
    const dbeta = columnSums(backend, 'tesseraLayerNormDbeta', ['DY'], [dy], rows, cols, p, 'DY[base + c]');
    b.disposeData(stats.dataId);
    return [dx, dgamma, dbeta];
  },

  TesseraRmsNorm: ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const { rows, cols } = rowsCols(x.shape);
    const p = packing(cols);
    const program = rowKernel(
      'tesseraRmsNorm',
      ['X', 'Gamma'],
      x.shape,
      rows,
      p,
      `${rmsStats(p)}
     for (var c = 0; c < uniforms.units; c = c + 1) { result[base + c] = X[base + c] * inv * Gamma[c]; }`,
    );
    return storage(backend).runWebGPUProgram(packed(program, p, true), [x, inputs.gamma], 'float32', [
      ints(1),
      ints(rows),
      ...dims(rows, cols, p, attrs.eps),
    ]);
  },

  TesseraRmsNormGrad: ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const dy = inputs.dy;
    const gamma = inputs.gamma;
    const { rows, cols } = rowsCols(x.shape);
    if (rows === 0 || cols === 0) return [zeros(backend, x.shape), zeros(backend, [cols])];
    const p = packing(cols);
    const b = storage(backend);
    const values = [ints(1), ints(rows), ...dims(rows, cols, p, attrs.eps)];
    const stats = b.runWebGPUProgram(
      packed(rowKernel('tesseraRmsNormStats', ['X'], [rows], rows, p, `${rmsStats(p)}\n result[row] = inv;`), p, false),
      [x],
      'float32',
      values,
    );
    const dx = b.runWebGPUProgram(
      packed(
        rowKernel(
          'tesseraRmsNormDx',
          ['DY', 'X', 'Gamma', 'Inv'],
          x.shape,
          rows,
          p,
          `let inv = Inv[row];
         var a = ${zero(p)};
         for (var c = 0; c < uniforms.units; c = c + 1) { a = a + DY[base + c] * Gamma[c] * X[base + c]; }
         let m = ${total(p, 'a')} / f32(uniforms.cols);
         for (var c = 0; c < uniforms.units; c = c + 1) {
           result[base + c] = inv * DY[base + c] * Gamma[c] - X[base + c] * inv * inv * inv * m;
         }`,
        ),
        p,
        true,
      ),
      [dy, x, gamma, stats],
      'float32',
      values,
    );
    const dgamma = columnSums(
      backend,
      'tesseraRmsNormDgamma',
      ['DY', 'X', 'Inv'],
      [dy, x, stats],
      rows,
      cols,
      p,
      'DY[base + c] * X[base + c] * Inv[r]',
    );
    b.disposeData(stats.dataId);
    return [dx, dgamma];
  },
} satisfies Partial<FusedKernelTable>;
