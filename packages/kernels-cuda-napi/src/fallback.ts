import { TesseraError } from '@tessera/tensor-core';
import * as tfc from '@tessera/tensor-core/tfjs';
import type { CudaBackend } from './backend.js';

/** The part of tfjs-backend-cpu's backend that host staging fills and empties. */
interface HostStorage {
  data: {
    set(dataId: object, value: { values: tfc.BackendValues; dtype: tfc.DataType; refCount: number }): void;
    get(dataId: object): { values: tfc.BackendValues };
    has(dataId: object): boolean;
    delete(dataId: object): boolean;
  };
}

type Inputs = Record<string, tfc.TensorInfo | tfc.TensorInfo[] | undefined | null>;

function inputInfos(inputs: Inputs): tfc.TensorInfo[] {
  const out: tfc.TensorInfo[] = [];
  for (const v of Object.values(inputs)) {
    if (Array.isArray(v)) out.push(...v);
    else if (v) out.push(v);
  }
  return out;
}

/** The engine's record of each tensor (which backend holds its data). */
function engineRecord(dataId: object): { backend: unknown } | undefined {
  return (
    tfc.engine() as unknown as { state: { tensorInfo: WeakMap<object, { backend: unknown }> } }
  ).state.tensorInfo.get(dataId);
}

/** Host values as another dtype (what a cast to a wider type means for shared data). */
function convert(values: tfc.BackendValues, dtype: tfc.DataType): tfc.BackendValues {
  const v = values as ArrayLike<number>;
  if (dtype === 'float32') return Float32Array.from(v);
  if (dtype === 'int32') return Int32Array.from(v);
  if (dtype === 'bool') return Uint8Array.from(v, (x) => (x ? 1 : 0));
  return values;
}

/** One output of a host-run kernel, made a cuda tensor. */
function adoptOutput(
  kernelName: string,
  backend: CudaBackend,
  host: HostStorage,
  staged: Map<object, tfc.DataType>,
  o: tfc.TensorInfo,
): tfc.TensorInfo {
  const inputDtype = staged.get(o.dataId);
  if (inputDtype !== undefined) {
    // Reshape-like kernels return their input's id with one more reference: ours.
    if (inputDtype === o.dtype) {
      backend.incRef(o.dataId);
      return o;
    }
    // A cast to a wider type shares the input's data under the new dtype (tfjs-backend-cpu
    // does that). One id holds one dtype here (its device copy is typed), so it gets its own.
    return backend.makeTensorInfo(o.shape, o.dtype, convert(host.data.get(o.dataId).values, o.dtype));
  }
  const values = host.data.get(o.dataId).values;
  if (values == null) {
    throw new TesseraError(
      `cuda: ${kernelName} (run on the host) returned ${o.dtype} data, which the cuda backend cannot hold; ` +
        'use the "cpu" backend for complex-valued ops.',
    );
  }
  backend.adopt(o.dataId, values, o.shape, o.dtype);
  host.data.delete(o.dataId);
  // Some cpu kernels return engine tensors they made on the host backend (makeOutput): the
  // engine must look for their data here now, or it would ask the host backend forever.
  const record = engineRecord(o.dataId);
  if (record && record.backend === backend.host) record.backend = backend;
  return o;
}

/** Property set on host-staged kernel functions: `tessera ops` counts them. */
export const HOST_FALLBACK = 'tesseraHostFallback';

/**
 * A cpu kernel run for "cuda" through host staging: the inputs' host copies (downloaded only
 * when the data is on the device) are lent to the backend's private cpu backend under their
 * own data ids, the cpu kernel runs there, and its outputs come back as host-resident cuda
 * tensors (uploaded only if a device kernel later needs them). Correct for every kernel the
 * cpu backend has; counted per kernel name in `backend.fallbacks`.
 */
export function hostFallback(kernelName: string, cpuKernel: tfc.KernelFunc): tfc.KernelFunc {
  const kernel: tfc.KernelFunc = (args) => {
    const backend = args.backend as unknown as CudaBackend;
    backend.fallbacks.set(kernelName, (backend.fallbacks.get(kernelName) ?? 0) + 1);
    const host = backend.host as unknown as HostStorage;
    const staged = new Map<object, tfc.DataType>();
    for (const t of inputInfos(args.inputs as Inputs)) {
      if (staged.has(t.dataId) || host.data.has(t.dataId)) continue;
      host.data.set(t.dataId, { values: backend.readSync(t.dataId), dtype: t.dtype, refCount: 1 });
      staged.set(t.dataId, t.dtype);
    }
    try {
      const result = cpuKernel({ ...args, backend: backend.host } as never);
      const outputs = (Array.isArray(result) ? result : [result]).map((o) =>
        adoptOutput(kernelName, backend, host, staged, o),
      );
      return Array.isArray(result) ? outputs : outputs[0]!;
    } finally {
      for (const id of staged.keys()) host.data.delete(id);
    }
  };
  // Marked, so tools (tessera ops) can tell a host-staged kernel from a device one.
  Object.defineProperty(kernel, HOST_FALLBACK, { value: true });
  return kernel;
}
