/**
 * The program plumbing every Tessera WGSL kernel shares. Each kernel is a tfjs program run
 * through the backend's own `runWebGPUProgram`, so buffers, uniforms and pipeline caching
 * are upstream's. Shaders index the raw storage arrays (`result`, and one array per input
 * named in `variableNames`), with sizes as uniforms.
 */
import { webgpu_util } from '@tensorflow/tfjs-backend-webgpu';
import type { TensorInfo } from '@tessera/tensor-core/tfjs';

export interface Program {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  size?: boolean;
  uniforms?: string;
  /** Elements per array entry of each input (4: the input is bound as array<vec4<f32>>). */
  variableComponents?: number[];
  /** Elements per entry of `result`. */
  outputComponent?: number;
  getUserCode(): string;
}

export type Uniform = { type: 'float32' | 'int32'; data: number[] };

export interface WebGpuStorage {
  runWebGPUProgram(program: Program, inputs: TensorInfo[], dtype: 'float32', uniforms?: Uniform[]): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

export const storage = (backend: unknown) => backend as WebGpuStorage;
export const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
export const ints = (...data: number[]): Uniform => ({ type: 'int32', data });
export const f32 = (...data: number[]): Uniform => ({ type: 'float32', data });

/**
 * A row of `n` floats as WGSL sees it: `units` entries of `type` (vec4 when n % 4 == 0).
 * Binding rows as vec4 (a program's variableComponents/outputComponent) makes each load and
 * store four floats wide; on lavapipe that roughly halves the time of a row loop.
 */
export interface Packing {
  width: 1 | 4;
  units: number;
  type: string;
}

export function packing(n: number): Packing {
  const width = n % 4 === 0 ? 4 : 1;
  return { width, units: n / width, type: width === 4 ? 'vec4<f32>' : 'f32' };
}

export const zero = (p: Packing) => `${p.type}(0.0)`;
/** WGSL: the sum of a packed value's lanes, as one f32. */
export const total = (p: Packing, x: string) => (p.width === 4 ? `dot(${x}, vec4<f32>(1.0))` : x);

/** An elementwise program: one invocation per output element. `body` sets `v` from index `i`. */
export function elementwise(
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
export const ROW_WG = 64;
export const BLOCK_SUM = `
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
export function rowProgram(
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
    // Upstream reshapes a dispatch over the per-dimension limit into 2-3 dimensions;
    // getGlobalIndex() flattens it again, so `index / ROW_WG` stays the row.
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

export function rowsCols(shape: number[]): { rows: number; cols: number } {
  const cols = shape[shape.length - 1] ?? 1;
  return { rows: cols === 0 ? 0 : sizeOf(shape) / cols, cols };
}

/** All-zero output of `shape` (the column sums over zero rows). */
export function zeros(backend: unknown, shape: number[]): TensorInfo {
  return storage(backend).runWebGPUProgram(elementwise('tesseraZeros', [], shape, 'v = 0.0;'), [], 'float32');
}

/** Workgroups per dispatch dimension that every WebGPU device allows. */
const MAX_WORKGROUPS = 65535;

/**
 * One invocation per item of each group ([groups, items]; the output may have any shape):
 * a workgroup never spans two groups (attention: a group is one head, whose
 * queries all read the same key and value rows), and workgroups shrink to 8 invocations
 * for short groups. `body` runs with `group` < uniforms.groups and `item` < uniforms.items;
 * `firstItem` and `lastItem`, the workgroup's item range, are the same for all its invocations.
 */
export function groupedProgram(
  key: string,
  inputs: string[],
  shape: number[],
  groups: number,
  items: number,
  body: string,
  uniforms = '',
  prelude = '',
): Program {
  const size = Math.min(64, Math.max(8, 2 ** Math.ceil(Math.log2(Math.max(items, 1)))));
  const workgroupSize: [number, number, number] = [size, 1, 1];
  const y = Math.max(1, Math.min(groups, MAX_WORKGROUPS));
  return {
    variableNames: inputs,
    outputShape: shape,
    shaderKey: key,
    dispatchLayout: webgpu_util.flatDispatchLayout(shape),
    dispatch: [Math.max(1, Math.ceil(items / size)), y, Math.max(1, Math.ceil(groups / y))],
    workgroupSize,
    uniforms: `groups : i32, items : i32, ${uniforms}`,
    getUserCode: () => `
      ${prelude}
      fn main(index : i32) {
        let group = i32(workgroupId.y + workgroupId.z * numWorkgroups.y);
        let firstItem = i32(workgroupId.x) * ${size};
        let lastItem = min(firstItem + ${size}, uniforms.items) - 1;
        let item = firstItem + i32(localId.x);
        if (group < uniforms.groups && item < uniforms.items) {
          ${body}
        }
      }`,
  };
}
