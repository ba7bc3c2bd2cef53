/**
 * Tessera's WGSL BatchMatMul for "webgpu": C[batch] = op(A[batch]) · op(B[batch]), op a
 * transpose or not (the forward product and both gradient products of a linear layer), batch
 * dimensions broadcast as tfjs allows, registered in place of upstream's kernel.
 *
 * Two kernels. Where the device has subgroups at a fixed size, the subgroup kernel
 * (subgroupShader below: each lane loads its own B columns, A's rows are loaded once per
 * subgroup and broadcast), 2.2–3× faster on lavapipe; without, the register-block kernel:
 *
 * Shaped for lavapipe, where a workgroup runs on one CPU thread as SIMD chunks of 8 (AVX2)
 * invocations, one lane each, and every vector component is its own SIMD register:
 *  - no workgroup memory and no barriers: lavapipe runs a shader with barriers as
 *    coroutines, switching chunks at each one (upstream's tiled matmul pays that twice per
 *    k tile);
 *  - each invocation keeps a block of `rows` × 4·`colGroups` outputs in registers and
 *    advances k four at a time with vec4 loads where the layout allows. Measured
 *    (bench/matmul-tiles.mjs), time follows loaded components + multiply-adds, whatever the
 *    addresses: a variant whose loads were all workgroup-uniform (scalar load + broadcast
 *    instead of a per-lane gather) ran no faster, and neither did the same kernel on
 *    pre-transposed layouts. So the block that loads least per multiply-add wins: 8 × 8
 *    loads 16 values per k for 64 multiply-adds (4 × 4: 8 for 16); 8 × 16 spills;
 *  - 'rows': a workgroup's invocations take consecutive row blocks of the same columns, so
 *    B (the weight, in a linear layer) is read once per workgroup rather than per lane;
 *    16 invocations (two chunks) per workgroup measured better than 8, 32 or 64, and it
 *    shrinks to 8 when the rows fit in one chunk (attention's short sequences).
 */
import { broadcast_util } from '@tessera/tensor-core/tfjs';
import type { TensorInfo } from '@tessera/tensor-core/tfjs';
import { f32, ints, type Program, storage } from './program.js';
import { SUBGROUPS_MARKER } from './subgroups.js';

export interface MatMulTiling {
  /**
   * The output axis a workgroup's invocations spread along: 'cols' (every invocation of a
   * workgroup has the same rows, so A's loads are uniform and B's gathered) or 'rows'; or
   * 'subgroup': a workgroup is one subgroup that shares its rows of A (see subgroupShader).
   */
  lanes: 'rows' | 'cols' | 'subgroup';
  /** Output rows per invocation ('subgroup': per workgroup, a multiple of the subgroup size and of 4). */
  rows: number;
  /** Groups of 4 output columns per invocation. */
  colGroups: number;
  /** Invocations per workgroup (all along `lanes`; 'subgroup': the subgroup size, whatever is given). */
  workgroup: number;
}

/** The tiling without subgroups. */
export const DEFAULT_TILING: MatMulTiling = { lanes: 'rows', rows: 8, colGroups: 2, workgroup: 16 };

/**
 * The tiling for `p` on a device with subgroups of `subgroup` invocations (undefined: none):
 * the subgroup kernel, 32 rows × 2 column groups (4·subgroup·2 columns) per workgroup, or
 * half of either where the full tile would pad the product more (lm-head: 65 columns or
 * rows); else DEFAULT_TILING.
 *
 * Where the device's shader compiler takes at most `maxAccumulators` vec4 accumulators per
 * invocation (rows × colGroups in the subgroup kernel; SwiftShader: 16, see
 * ./subgroups.ts), the rows shrink to fit (a multiple of the subgroup size still), then the
 * column groups to 1; DEFAULT_TILING (8 × 2 = 16) if no subgroup tile fits.
 */
export function autoTiling(p: MatMulProblem, subgroup: number | undefined, maxAccumulators?: number): MatMulTiling {
  if (!subgroup) return DEFAULT_TILING;
  const padded = (n: number, tile: number) => Math.ceil(n / tile) * tile;
  let colGroups = padded(p.N, 8 * subgroup) > padded(p.N, 4 * subgroup) ? 1 : 2;
  let rows = Math.max(subgroup, padded(p.M, 32) > padded(p.M, 16) ? 16 : 32);
  if (maxAccumulators !== undefined && rows * colGroups > maxAccumulators) {
    const fit = (groups: number) => Math.floor(maxAccumulators / groups / subgroup) * subgroup;
    if (fit(colGroups) < subgroup) colGroups = 1;
    rows = Math.min(rows, fit(colGroups));
    if (rows < subgroup) return DEFAULT_TILING;
  }
  return { lanes: 'subgroup', rows, colGroups, workgroup: subgroup };
}

/**
 * `tiling` as it runs on a device with subgroups of `subgroup` (undefined: none): a
 * 'subgroup' tiling takes the device's subgroup size, or becomes DEFAULT_TILING without one.
 */
export function deviceTiling(tiling: MatMulTiling, subgroup: number | undefined): MatMulTiling {
  if (tiling.lanes !== 'subgroup') return tiling;
  return subgroup ? { ...tiling, workgroup: subgroup } : DEFAULT_TILING;
}

/** Batch dimensions the shader maps (tensors of rank ≤ 6); higher ranks go to upstream. */
const MAX_BATCH_DIMS = 4;
const MAX_WORKGROUPS = 65535;

export interface MatMulProblem {
  batchShape: number[];
  batch: number;
  M: number;
  N: number;
  K: number;
  transposeA: boolean;
  transposeB: boolean;
  /** Per padded batch dimension: the matrix stride of A (0 where A broadcasts), and of B. */
  aStrides: number[];
  bStrides: number[];
  dims: number[];
  /** Element offsets of the first matrix of A and of B in their buffers (0 for whole tensors). */
  aBase: number;
  bBase: number;
  /** The product is scaled by alpha. */
  alpha: number;
  /**
   * Causal attention's zeros, so a workgroup skips them (bounds taken over its whole row
   * block, uniform; `offset` = keys − queries): 'kAbove', A[r, k] = 0 for k > r + offset
   * (P·v, dS·k); 'kBelow', A[r, k] = 0 for k < r − offset (Pᵀ·dy, dSᵀ·q); 'outAbove', outputs
   * with column > row + offset are never read (the scores), so their blocks are not computed.
   */
  band?: { mode: 'kAbove' | 'kBelow' | 'outAbove'; offset: number };
}

const BAND_MODES = { kAbove: 1, kBelow: 2, outAbove: 3 } as const;

/** The problem's shapes, or a reason this kernel does not cover it (then upstream runs it). */
export function matMulProblem(
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): MatMulProblem | string {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return `dtype ${a.dtype}×${b.dtype}`;
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return 'rank < 2';
  const M = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const K = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const Kb = transposeB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const N = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if (K !== Kb) return 'inner sizes differ'; // upstream raises tfjs's own message
  const batchShape = broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  if (batchShape.length > MAX_BATCH_DIMS) return `more than ${MAX_BATCH_DIMS} batch dimensions`;
  const batch = batchShape.reduce((x, y) => x * y, 1);
  if (batch * M * N === 0) return 'empty';
  if (K === 0) return 'empty K';
  const pad = (s: readonly number[]) => [...Array(MAX_BATCH_DIMS - s.length).fill(1), ...s];
  const dims = pad(batchShape);
  const strides = (shape: readonly number[], matrix: number) => {
    const d = pad(shape.slice(0, -2));
    const out = Array<number>(MAX_BATCH_DIMS).fill(0);
    let s = matrix;
    for (let i = MAX_BATCH_DIMS - 1; i >= 0; i--) {
      out[i] = d[i] === 1 ? 0 : s;
      s *= d[i]!;
    }
    return out;
  };
  return {
    batchShape,
    batch,
    M,
    N,
    K,
    transposeA,
    transposeB,
    aStrides: strides(a.shape, M * K),
    bStrides: strides(b.shape, K * N),
    dims,
    aBase: 0,
    bBase: 0,
    alpha: 1,
  };
}

/**
 * C[i] = alpha · op(A[i]) · op(B[i]) for i < batch over matrices packed back to back from
 * element aBase of A's buffer and bBase of B's (attention's backward reads P and dS from one
 * buffer this way); the output has shape [...batchShape, M, N].
 */
export function batchedProblem(
  batchShape: number[],
  M: number,
  N: number,
  K: number,
  transposeA: boolean,
  transposeB: boolean,
  options: { aBase?: number; bBase?: number; alpha?: number; band?: MatMulProblem['band'] } = {},
): MatMulProblem {
  const batch = batchShape.reduce((x, y) => x * y, 1);
  return {
    batchShape,
    batch,
    M,
    N,
    K,
    transposeA,
    transposeB,
    dims: [1, 1, 1, batch],
    aStrides: [0, 0, 0, M * K],
    bStrides: [0, 0, 0, K * N],
    aBase: options.aBase ?? 0,
    bBase: options.bBase ?? 0,
    alpha: options.alpha ?? 1,
    ...(options.band ? { band: options.band } : {}),
  };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const lanes4 = ['x', 'y', 'z', 'w'];
/** WGSL reading flat element `e` of `name`, bound as vec4 when `packed`. */
const elem = (name: string, packed: boolean, e: string) =>
  packed ? `${name}[(${e}) / 4][(${e}) % 4]` : `${name}[${e}]`;

interface Layout {
  t: MatMulTiling;
  tA: boolean;
  tB: boolean;
  /** A, B and the output bound as vec4 (their contiguous dimension a multiple of 4). */
  packA: boolean;
  packB: boolean;
  packOut: boolean;
}

/**
 * Bounds-checked stores of accumulators acc{i}_{g} (rows `rowBase + i`, 4 columns from
 * colOf(g)) times alpha: one vec4 store per accumulator when the output is packed, else four.
 */
function accumulatorWrites(
  rows: number,
  groups: number,
  rowBase: string,
  colOf: (g: number) => string,
  packOut: boolean,
): string[] {
  const writes: string[] = [];
  for (const i of range(rows))
    for (const g of range(groups)) {
      const row = `${rowBase} + ${i}`;
      const col = colOf(g);
      if (packOut) {
        writes.push(
          `if (${row} < uniforms.M && ${col} < uniforms.N) { result[(outOff + (${row}) * uniforms.N + ${col}) / 4] = acc${i}_${g} * uniforms.alpha; }`,
        );
      } else {
        for (const c of range(4))
          writes.push(
            `if (${row} < uniforms.M && ${col} + ${c} < uniforms.N) { result[outOff + (${row}) * uniforms.N + ${col} + ${c}] = acc${i}_${g}.${lanes4[c]} * uniforms.alpha; }`,
          );
      }
    }
  return writes;
}

/**
 * WGSL for one k step of 4 (k = kk .. kk+3, all < K): loads A's rows × 4 and B's 4 ×
 * columns block into `a{i}_{t}` / `b{t}_{c}` and accumulates. vec4 loads where the
 * contiguous dimension is packed; the components land in separate registers either way.
 */
function kBlock(l: Layout): string {
  const { t, tA, tB, packA, packB } = l;
  const R = t.rows;
  const cols = 4 * t.colGroups;
  const out: string[] = [];
  const a = (i: number, k: number) => `a${i}_${k}`;
  const b = (k: number, c: number) => `b${k}_${c}`;
  // A[r, kk+k]: row-major [M, K], or At [K, M] when transposed.
  if (!tA && packA) {
    for (const i of range(R)) {
      out.push(`let av${i} = A[(aOff + r${i} * uniforms.K + kk) / 4];`);
      for (const k of range(4)) out.push(`let ${a(i, k)} = av${i}.${lanes4[k]};`);
    }
  } else if (!tA) {
    for (const i of range(R))
      for (const k of range(4)) out.push(`let ${a(i, k)} = A[aOff + r${i} * uniforms.K + kk + ${k}];`);
  } else if (packA && R % 4 === 0) {
    for (const q of range(R / 4))
      for (const k of range(4)) {
        out.push(`let at${q}_${k} = A[(aOff + (kk + ${k}) * uniforms.M + rq${q}) / 4];`);
        for (const s of range(4)) out.push(`let ${a(4 * q + s, k)} = at${q}_${k}.${lanes4[s]};`);
      }
  } else {
    for (const i of range(R))
      for (const k of range(4))
        out.push(`let ${a(i, k)} = ${elem('A', packA, `aOff + (kk + ${k}) * uniforms.M + r${i}`)};`);
  }
  // B[kk+k, c]: row-major [K, N], or Bt [N, K] when transposed.
  if (!tB && packB) {
    for (const k of range(4))
      for (const g of range(t.colGroups)) {
        out.push(`let bv${k}_${g} = B[(bOff + (kk + ${k}) * uniforms.N + cg${g}) / 4];`);
        for (const s of range(4)) out.push(`let ${b(k, 4 * g + s)} = bv${k}_${g}.${lanes4[s]};`);
      }
  } else if (!tB) {
    for (const k of range(4))
      for (const c of range(cols)) out.push(`let ${b(k, c)} = B[bOff + (kk + ${k}) * uniforms.N + c${c}];`);
  } else if (packB) {
    for (const c of range(cols)) {
      out.push(`let bt${c} = B[(bOff + c${c} * uniforms.K + kk) / 4];`);
      for (const k of range(4)) out.push(`let ${b(k, c)} = bt${c}.${lanes4[k]};`);
    }
  } else {
    for (const c of range(cols))
      for (const k of range(4)) out.push(`let ${b(k, c)} = B[bOff + c${c} * uniforms.K + kk + ${k}];`);
  }
  for (const i of range(R))
    for (const g of range(t.colGroups)) {
      const terms = range(4).reduce(
        (acc, k) =>
          `fma(vec4<f32>(${a(i, k)}), vec4<f32>(${range(4)
            .map((s) => b(k, 4 * g + s))
            .join(', ')}), ${acc})`,
        `acc${i}_${g}`,
      );
      out.push(`acc${i}_${g} = ${terms};`);
    }
  return out.join('\n      ');
}

/** WGSL for one leftover k (K not a multiple of 4): scalar loads, same accumulation. */
function kTail(l: Layout): string {
  const { t, tA, tB, packA, packB } = l;
  const out: string[] = [];
  for (const i of range(t.rows)) {
    const e = tA ? `aOff + k * uniforms.M + r${i}` : `aOff + r${i} * uniforms.K + k`;
    out.push(`let a${i} = ${elem('A', packA, e)};`);
  }
  for (const c of range(4 * t.colGroups)) {
    const e = tB ? `bOff + c${c} * uniforms.K + k` : `bOff + k * uniforms.N + c${c}`;
    out.push(`let b${c} = ${elem('B', packB, e)};`);
  }
  for (const i of range(t.rows))
    for (const g of range(t.colGroups)) {
      const bs = range(4)
        .map((s) => `b${4 * g + s}`)
        .join(', ');
      out.push(`acc${i}_${g} = fma(vec4<f32>(a${i}), vec4<f32>(${bs}), acc${i}_${g});`);
    }
  return out.join('\n      ');
}

function shader(l: Layout): string {
  const { t, packOut } = l;
  const R = t.rows;
  const cols = 4 * t.colGroups;
  // The uniform side (workgroup id) and the per-lane side (local id) of the block origin.
  // The workgroup's first row, one past its last, and its first column: uniform.
  const [wgRow0, wgRows, wgCol0] =
    t.lanes === 'cols'
      ? [`i32(workgroupId.y) * ${R}`, R, `i32(workgroupId.x) * ${t.workgroup * cols}`]
      : [`i32(workgroupId.y) * ${t.workgroup * R}`, t.workgroup * R, `i32(workgroupId.x) * ${cols}`];
  const [rowBase, colBase] =
    t.lanes === 'cols'
      ? [`i32(workgroupId.y) * ${R}`, `(i32(workgroupId.x) * ${t.workgroup} + i32(localId.x)) * ${cols}`]
      : [`(i32(workgroupId.y) * ${t.workgroup} + i32(localId.x)) * ${R}`, `i32(workgroupId.x) * ${cols}`];
  const writes = accumulatorWrites(R, t.colGroups, 'rowBase', (g) => `colBase + ${4 * g}`, packOut);
  return `
  fn main(index : i32) {
    // Batches past the dispatch limit: each workgroup takes every numWorkgroups.z-th one.
    for (var batch = i32(workgroupId.z); batch < uniforms.batch; batch = batch + i32(numWorkgroups.z)) {
    // Out batch index -> the 4 padded batch coordinates -> matrix offsets (stride 0 broadcasts).
    let d = uniforms.dims;
    let bc = vec4<i32>(batch / (d.y * d.z * d.w), (batch / (d.z * d.w)) % d.y, (batch / d.w) % d.z, batch % d.w);
    let aOff = uniforms.aBase + dot(bc, uniforms.aStrides);
    let bOff = uniforms.bBase + dot(bc, uniforms.bStrides);
    let outOff = batch * uniforms.M * uniforms.N;
    let rowBase = ${rowBase};
    let colBase = ${colBase};
    // Rows and columns past the edge read the last valid one; their results are not written.
    ${range(R)
      .map((i) => `let r${i} = min(rowBase + ${i}, uniforms.M - 1);`)
      .join(' ')}
    ${range(R / 4)
      .map((q) => `let rq${q} = min(rowBase + ${4 * q}, uniforms.M - 4);`)
      .join(' ')}
    ${range(cols)
      .map((c) => `let c${c} = min(colBase + ${c}, uniforms.N - 1);`)
      .join(' ')}
    ${range(t.colGroups)
      .map((g) => `let cg${g} = min(colBase + ${4 * g}, uniforms.N - 4);`)
      .join(' ')}
    ${range(R)
      .flatMap((i) => range(t.colGroups).map((g) => `var acc${i}_${g} = vec4<f32>(0.0);`))
      .join(' ')}
    // The k range this workgroup needs (all of it unless a causal band zeroes part).
    let lastRow = min(${wgRow0} + ${wgRows}, uniforms.M) - 1;
    var kStart = 0;
    var kEnd = uniforms.K;
    if (uniforms.bandMode == 1) { kEnd = clamp(lastRow + uniforms.bandOff + 1, 0, uniforms.K); }
    if (uniforms.bandMode == 2) { kStart = clamp(${wgRow0} - uniforms.bandOff, 0, uniforms.K) / 4 * 4; }
    if (uniforms.bandMode == 3 && ${wgCol0} > lastRow + uniforms.bandOff) { kEnd = 0; }
    let k4 = kStart + (kEnd - kStart) / 4 * 4;
    for (var kk = kStart; kk < k4; kk = kk + 4) {
      ${kBlock(l)}
    }
    for (var k = k4; k < kEnd; k = k + 1) {
      ${kTail(l)}
    }
    ${writes.join('\n    ')}
    }
  }`;
}

/**
 * The subgroup kernel ('subgroup' lanes): a workgroup is one subgroup of S invocations and
 * computes a tile of R rows × 4·S·G columns. Invocation `lane` owns the columns
 * col0 + 4·(lane + S·g) (g < G) of all R rows, so it loads its own B values (vec4s, no
 * sharing needed), while the R rows of A, which every invocation needs, are loaded once per
 * subgroup, spread over its lanes, and handed round with subgroupBroadcast.
 *
 * On lavapipe every buffer load runs per lane (llvmpipe treats any index that is not a
 * constant as divergent), so a value all lanes need costs S loads when each lane reads it
 * itself; broadcast from the lane that loaded it, it costs one load and a register
 * shuffle. Per k step of 4 an invocation loads R/S + 4·G vec4s (A's share, its B block) for
 * 16·R·G multiply-adds: 2 + 8 for 256 with R = 16, G = 2, against 16 for 256 in the 8 × 8
 * register block, whose B loads every lane repeats. Measured (bench/matmul-tiles.mjs), 2.2–3×
 * faster than that block on all four layouts.
 *
 * A's rows per k step: untransposed A [M, K], lane l loads the vec4 A[row0 + l + S·q, kk..kk+3]
 * (q < R/S) and row i comes from lane i % S; transposed (At [K, M], contiguous along M) the
 * step's 4 × R values are R vec4s along M, spread over the lanes the same way. Unpacked
 * operands (a contiguous size not a multiple of 4) load the same values as scalars, and K's
 * last K % 4 values go one at a time.
 */
function subgroupShader(l: Layout): string {
  const { t, tA, tB, packA, packB, packOut } = l;
  const S = t.workgroup;
  const R = t.rows;
  const G = t.colGroups;
  const Q = R / S;
  const body: string[] = [];
  const tail: string[] = [];
  // A: `a{i}` is row i's vec4 over k = kk..kk+3 (the same in every lane).
  if (!tA && packA) {
    for (const q of range(Q)) body.push(`let av${q} = A[(aOff + ra${q} * uniforms.K + kk) / 4];`);
    for (const i of range(R)) body.push(`let a${i} = subgroupBroadcast(av${Math.floor(i / S)}, ${i % S}u);`);
  } else if (tA && packA) {
    // Step value u (k = u / (R/4), rows 4·(u % (R/4)) .. +3) is lane u % S's load u / S.
    for (const q of range(Q)) body.push(`let at${q} = A[(aOff + (kk + ka${q}) * uniforms.M + rg${q}) / 4];`);
    for (const g4 of range(R / 4))
      for (const k of range(4)) {
        const u = k * (R / 4) + g4;
        body.push(`let ab${g4}_${k} = subgroupBroadcast(at${Math.floor(u / S)}, ${u % S}u);`);
      }
    for (const i of range(R))
      body.push(
        `let a${i} = vec4<f32>(${range(4)
          .map((k) => `ab${Math.floor(i / 4)}_${k}.${lanes4[i % 4]}`)
          .join(', ')});`,
      );
  } else {
    // Unpacked: lane l loads row ra{q}'s 4 values of k, one by one.
    const e = (q: number, k: number) =>
      tA ? `aOff + (kk + ${k}) * uniforms.M + ra${q}` : `aOff + ra${q} * uniforms.K + kk + ${k}`;
    for (const q of range(Q))
      body.push(
        `let av${q} = vec4<f32>(${range(4)
          .map((k) => elem('A', packA, e(q, k)))
          .join(', ')});`,
      );
    for (const i of range(R)) body.push(`let a${i} = subgroupBroadcast(av${Math.floor(i / S)}, ${i % S}u);`);
  }
  // B: `b{k}_{g}` is the vec4 of this lane's columns cb{g} .. cb{g}+3 at k = kk + k.
  if (!tB && packB) {
    for (const k of range(4))
      for (const g of range(G)) body.push(`let b${k}_${g} = B[(bOff + (kk + ${k}) * uniforms.N + cb${g}) / 4];`);
  } else if (!tB) {
    for (const k of range(4))
      for (const g of range(G))
        body.push(
          `let b${k}_${g} = vec4<f32>(${range(4)
            .map((c) => `B[bOff + (kk + ${k}) * uniforms.N + cc${g}_${c}]`)
            .join(', ')});`,
        );
  } else {
    // Bt [N, K]: column c's 4 values of k are contiguous; transposed in registers.
    for (const g of range(G))
      for (const c of range(4)) {
        const col = `cc${g}_${c}`;
        body.push(
          packB
            ? `let bt${g}_${c} = B[(bOff + (${col}) * uniforms.K + kk) / 4];`
            : `let bt${g}_${c} = vec4<f32>(${range(4)
                .map((k) => `B[bOff + ${col} * uniforms.K + kk + ${k}]`)
                .join(', ')});`,
        );
      }
    for (const k of range(4))
      for (const g of range(G))
        body.push(
          `let b${k}_${g} = vec4<f32>(${range(4)
            .map((c) => `bt${g}_${c}.${lanes4[k]}`)
            .join(', ')});`,
        );
  }
  for (const i of range(R))
    for (const g of range(G)) {
      const terms = range(4).reduce(
        (acc, k) => `fma(vec4<f32>(a${i}.${lanes4[k]}), b${k}_${g}, ${acc})`,
        `acc${i}_${g}`,
      );
      body.push(`acc${i}_${g} = ${terms};`);
    }
  // K's last values, one k at a time: A by rows per lane, as in the unpacked step.
  for (const q of range(Q)) {
    const e = tA ? `aOff + k * uniforms.M + ra${q}` : `aOff + ra${q} * uniforms.K + k`;
    tail.push(`let as${q} = ${elem('A', packA, e)};`);
  }
  for (const g of range(G)) {
    const b = tB
      ? `vec4<f32>(${range(4)
          .map((c) => elem('B', packB, `bOff + cc${g}_${c} * uniforms.K + k`))
          .join(', ')})`
      : packB
        ? `B[(bOff + k * uniforms.N + cb${g}) / 4]`
        : `vec4<f32>(${range(4)
            .map((c) => `B[bOff + k * uniforms.N + cc${g}_${c}]`)
            .join(', ')})`;
    tail.push(`let bs${g} = ${b};`);
  }
  for (const i of range(R)) {
    tail.push(`let as${i}_ = subgroupBroadcast(as${Math.floor(i / S)}, ${i % S}u);`);
    for (const g of range(G)) tail.push(`acc${i}_${g} = fma(vec4<f32>(as${i}_), bs${g}, acc${i}_${g});`);
  }
  const writes = accumulatorWrites(R, G, 'row0', (g) => `colBase + ${4 * S * g}`, packOut);
  // Per-lane indices: A rows this lane loads (clamped: rows past M read the last one and are
  // not written), and (transposed, packed) its step values' k and 4-row group; B columns.
  const setup = [
    ...range(Q).map((q) => `let ra${q} = min(row0 + lane + ${S * q}, uniforms.M - 1);`),
    ...(tA && packA
      ? range(Q).map(
          (q) =>
            `let ka${q} = (lane + ${S * q}) / ${R / 4}; let rg${q} = min(row0 + (lane + ${S * q}) % ${R / 4} * 4, uniforms.M - 4);`,
        )
      : []),
    ...range(G).map((g) =>
      !tB && packB
        ? `let cb${g} = min(colBase + ${4 * S * g}, uniforms.N - 4);`
        : range(4)
            .map((c) => `let cc${g}_${c} = min(colBase + ${4 * S * g + c}, uniforms.N - 1);`)
            .join(' '),
    ),
  ];
  return `
  ${SUBGROUPS_MARKER}
  @diagnostic(off, subgroup_uniformity)
  fn main(index : i32) {
    let lane = i32(localId.x);
    for (var batch = i32(workgroupId.z); batch < uniforms.batch; batch = batch + i32(numWorkgroups.z)) {
    let d = uniforms.dims;
    let bc = vec4<i32>(batch / (d.y * d.z * d.w), (batch / (d.z * d.w)) % d.y, (batch / d.w) % d.z, batch % d.w);
    let aOff = uniforms.aBase + dot(bc, uniforms.aStrides);
    let bOff = uniforms.bBase + dot(bc, uniforms.bStrides);
    let outOff = batch * uniforms.M * uniforms.N;
    let row0 = i32(workgroupId.y) * ${R};
    let col0 = i32(workgroupId.x) * ${4 * S * G};
    let colBase = col0 + lane * 4;
    ${setup.join('\n    ')}
    ${range(R)
      .flatMap((i) => range(G).map((g) => `var acc${i}_${g} = vec4<f32>(0.0);`))
      .join(' ')}
    let lastRow = min(row0 + ${R}, uniforms.M) - 1;
    var kStart = 0;
    var kEnd = uniforms.K;
    if (uniforms.bandMode == 1) { kEnd = clamp(lastRow + uniforms.bandOff + 1, 0, uniforms.K); }
    if (uniforms.bandMode == 2) { kStart = clamp(row0 - uniforms.bandOff, 0, uniforms.K) / 4 * 4; }
    if (uniforms.bandMode == 3 && col0 > lastRow + uniforms.bandOff) { kEnd = 0; }
    let k4 = kStart + (kEnd - kStart) / 4 * 4;
    for (var kk = kStart; kk < k4; kk = kk + 4) {
      ${body.join('\n      ')}
    }
    for (var k = k4; k < kEnd; k = k + 1) {
      ${tail.join('\n      ')}
    }
    ${writes.join('\n    ')}
    }
  }`;
}

/** The program for `p` with `tiling`, or a reason it cannot run (too many workgroups). */
export function matMulProgram(p: MatMulProblem, tiling: MatMulTiling = DEFAULT_TILING): Program | string {
  if (tiling.lanes === 'subgroup') return subgroupProgram(p, tiling);
  const cols = 4 * tiling.colGroups;
  const rowBlocks = Math.ceil(p.M / tiling.rows);
  const colBlocks = Math.ceil(p.N / cols);
  // A workgroup no wider than the blocks along its axis (down to one SIMD chunk of 8).
  const along = tiling.lanes === 'rows' ? rowBlocks : colBlocks;
  const t = { ...tiling, workgroup: Math.min(tiling.workgroup, Math.max(8, 2 ** Math.ceil(Math.log2(along)))) };
  const dispatch: [number, number, number] =
    t.lanes === 'cols'
      ? [Math.ceil(colBlocks / t.workgroup), rowBlocks, Math.min(p.batch, MAX_WORKGROUPS)]
      : [colBlocks, Math.ceil(rowBlocks / t.workgroup), Math.min(p.batch, MAX_WORKGROUPS)];
  if (dispatch.some((n) => n > MAX_WORKGROUPS)) return `dispatch ${dispatch} over ${MAX_WORKGROUPS}`;
  const layout: Layout = {
    t,
    tA: p.transposeA,
    tB: p.transposeB,
    // The contiguous dimension of each operand: K for A unless transposed (then M), N for B
    // unless transposed (then K). Transposed-A vec4 loads need whole groups of 4 rows.
    // A vec4-bound operand also needs its first matrix on a vec4 boundary.
    packA: p.aBase % 4 === 0 && (p.transposeA ? p.M % 4 === 0 && t.rows % 4 === 0 : p.K % 4 === 0),
    packB: p.bBase % 4 === 0 && (p.transposeB ? p.K % 4 === 0 : p.N % 4 === 0),
    packOut: p.N % 4 === 0,
  };
  return program(p, layout, dispatch, shader);
}

/** The subgroup kernel's program: one workgroup (one subgroup) per tile of rows × 4·subgroup·colGroups. */
function subgroupProgram(p: MatMulProblem, t: MatMulTiling): Program | string {
  const S = t.workgroup;
  if (t.rows % S !== 0 || t.rows % 4 !== 0) return `subgroup tiling: rows ${t.rows} not a multiple of ${S} and 4`;
  const dispatch: [number, number, number] = [
    Math.ceil(p.N / (4 * S * t.colGroups)),
    Math.ceil(p.M / t.rows),
    Math.min(p.batch, MAX_WORKGROUPS),
  ];
  if (dispatch.some((n) => n > MAX_WORKGROUPS)) return `dispatch ${dispatch} over ${MAX_WORKGROUPS}`;
  const layout: Layout = {
    t,
    tA: p.transposeA,
    tB: p.transposeB,
    packA: p.aBase % 4 === 0 && (p.transposeA ? p.M % 4 === 0 : p.K % 4 === 0),
    packB: p.bBase % 4 === 0 && (p.transposeB ? p.K % 4 === 0 : p.N % 4 === 0),
    packOut: p.N % 4 === 0,
  };
  return program(p, layout, dispatch, subgroupShader);
}

function program(
  p: MatMulProblem,
  layout: Layout,
  dispatch: [number, number, number],
  source: (l: Layout) => string,
): Program {
  const { t } = layout;
  const key =
    `tesseraMatMul_${t.lanes}${t.rows}x${t.colGroups}w${t.workgroup}_` +
    `${+layout.tA}${+layout.tB}${+layout.packA}${+layout.packB}${+layout.packOut}`;
  return {
    variableNames: ['A', 'B'],
    outputShape: [...p.batchShape, p.M, p.N],
    shaderKey: key,
    dispatchLayout: { x: [0] },
    dispatch,
    workgroupSize: [t.workgroup, 1, 1],
    uniforms:
      'batch : i32, M : i32, N : i32, K : i32, aBase : i32, bBase : i32, alpha : f32, bandMode : i32, bandOff : i32, ' +
      'dims : vec4<i32>, aStrides : vec4<i32>, bStrides : vec4<i32>,',
    variableComponents: [layout.packA ? 4 : 1, layout.packB ? 4 : 1],
    outputComponent: layout.packOut ? 4 : 1,
    getUserCode: () => source(layout),
  };
}

export function runMatMul(
  backend: unknown,
  a: TensorInfo,
  b: TensorInfo,
  p: MatMulProblem,
  program: Program,
): TensorInfo {
  return storage(backend).runWebGPUProgram(program, [a, b], 'float32', [
    ints(p.batch),
    ints(p.M),
    ints(p.N),
    ints(p.K),
    ints(p.aBase),
    ints(p.bBase),
    f32(p.alpha),
    ints(p.band ? BAND_MODES[p.band.mode] : 0),
    ints(p.band?.offset ?? 0),
    ints(...p.dims),
    ints(...p.aStrides),
    ints(...p.bStrides),
  ]);
}
