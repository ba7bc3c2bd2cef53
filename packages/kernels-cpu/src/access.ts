import type { KernelBackend, TensorInfo } from '@tessera/tensor-core/tfjs';

/** The slice of tfjs-backend-cpu's storage the reference kernels use. */
export interface CpuStorage extends KernelBackend {
  data: { get(dataId: object): { values: ArrayLike<number> } };
  makeTensorInfo(shape: number[], dtype: 'float32' | 'int32', values: Float32Array | Int32Array): TensorInfo;
}

export function values(backend: unknown, t: TensorInfo): ArrayLike<number> {
  return (backend as CpuStorage).data.get(t.dataId).values;
}

export function output(backend: unknown, shape: number[], data: Float32Array): TensorInfo {
  return (backend as CpuStorage).makeTensorInfo(shape, 'float32', data);
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
