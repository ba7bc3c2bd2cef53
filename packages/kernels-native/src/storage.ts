import type * as tfc from '@tessera/tensor-core/tfjs';
import type { NativeAddon } from './addon.js';
import type { BufferPool } from './pool.js';

type TensorInfo = tfc.TensorInfo;

/**
 * What each kernel module is made from. Outputs come from `pool` (see pool.ts): `alloc` where
 * the addon writes every element, `zeros` where it may skip some (empty reductions,
 * zero-sized attention).
 */
export interface NativeContext {
  addon: NativeAddon;
  pool: BufferPool;
}

/** A kernel's arguments as far as storage goes: fused (typed) and tfjs kernels both fit. */
export interface WithBackend {
  backend: unknown;
}

/** tfjs-backend-cpu's storage, which the native backend shares (see registerCpuDerivedBackend). */
interface CpuStorage {
  data: { get(dataId: object): { values: ArrayLike<number> | undefined } };
  makeTensorInfo(shape: number[], dtype: tfc.DataType, values: Float32Array | Int32Array): TensorInfo;
}

const storage = (args: WithBackend) => args.backend as CpuStorage;
export const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The tensor's own Float32Array (no copy), or null when it is not stored as one. */
export function f32(args: WithBackend, t: TensorInfo): Float32Array | null {
  const v = storage(args).data.get(t.dataId).values;
  return t.dtype === 'float32' && v instanceof Float32Array ? v : null;
}

/** Float32Array view of any numeric tensor (copies only when it is not float32: masks). */
export function asF32(args: WithBackend, t: TensorInfo): Float32Array {
  const v = storage(args).data.get(t.dataId).values!;
  return v instanceof Float32Array ? v : Float32Array.from(v);
}

export function asI32(args: WithBackend, t: TensorInfo): Int32Array {
  const v = storage(args).data.get(t.dataId).values!;
  return v instanceof Int32Array ? v : Int32Array.from(v);
}

export const out = (args: WithBackend, shape: number[], values: Float32Array) =>
  storage(args).makeTensorInfo(shape, 'float32', values);
