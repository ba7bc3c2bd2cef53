import { createCpuBackend } from '@tessera/kernels-cpu';
import type * as tfc from '@tessera/tensor-core/tfjs';
import type { BufferPool } from './pool.js';

type DataId = object;

/** The part of tfjs-backend-cpu's backend the pool hooks into. */
interface CpuBackend extends tfc.KernelBackend {
  data: { get(dataId: DataId): { values?: unknown } | undefined; has(dataId: DataId): boolean };
}

/**
 * The stored values of a tensor, or undefined. DataStorage.get() of an id it does not hold
 * tries to move the data in from another backend: ask has() first.
 */
function valuesOf(backend: CpuBackend, dataId: DataId | undefined): unknown {
  return dataId !== undefined && backend.data.has(dataId) ? backend.data.get(dataId)?.values : undefined;
}

/**
 * A tfjs-backend-cpu backend whose released tensors return their buffers to `pool`, and
 * whose reads mark the buffer escaped (dataSync() hands out the stored array itself, which
 * the caller may keep after disposing the tensor).
 */
export function createNativeBackend(pool: BufferPool): tfc.KernelBackend {
  const backend = createCpuBackend() as CpuBackend;

  const disposeData = backend.disposeData.bind(backend);
  backend.disposeData = (dataId: DataId, force?: boolean) => {
    const values = valuesOf(backend, dataId);
    const released = disposeData(dataId, force);
    // Only when the last reference went (refCount 0) is the entry deleted.
    if (values !== undefined && !backend.data.has(dataId)) pool.release(values);
    return released;
  };

  // read() goes through readSync on this backend, so both paths are covered here.
  const readSync = backend.readSync.bind(backend);
  backend.readSync = (dataId: DataId) => {
    pool.escape(valuesOf(backend, dataId));
    return readSync(dataId);
  };
  return backend;
}

/**
 * Wraps a kernel so that an output viewing an input's buffer (tfjs-backend-cpu's Slice
 * returns `values.subarray(...)`) marks that buffer escaped: recycling it when the input is
 * disposed would overwrite the live view.
 */
export function guardViews(kernelFunc: tfc.KernelFunc, pool: BufferPool): tfc.KernelFunc {
  return (args) => {
    const result = kernelFunc(args);
    const backend = args.backend as unknown as CpuBackend;
    // Inputs may be lists (ragged ops take arrays of tensors).
    const escapeShared = (input: tfc.TensorInfo | undefined, output: tfc.TensorInfo, outBuffer: ArrayBufferLike) => {
      if (input?.dataId === output.dataId) return;
      const inValues = valuesOf(backend, input?.dataId);
      if (ArrayBuffer.isView(inValues) && inValues.buffer === outBuffer) pool.escape(inValues);
    };
    for (const output of Array.isArray(result) ? result : [result]) {
      const outValues = valuesOf(backend, output.dataId);
      if (!ArrayBuffer.isView(outValues)) continue;
      for (const input of Object.values(args.inputs) as (tfc.TensorInfo | tfc.TensorInfo[] | undefined)[]) {
        if (Array.isArray(input)) for (const t of input) escapeShared(t, output, outValues.buffer);
        else escapeShared(input, output, outValues.buffer);
      }
    }
    return result;
  };
}
