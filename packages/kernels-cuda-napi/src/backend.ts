import { TesseraError } from '@tessera/tensor-core';
import * as tfc from '@tessera/tensor-core/tfjs';
import type { DeviceMemory, DevicePtr } from './addon.js';

type DataId = object;
type HostValues = tfc.BackendValues;

/**
 * What the backend keeps per data id. A tensor lives on the device (`ptr`), on the host
 * (`values`), or both: data written from JS and outputs of host fallbacks stay on the host
 * until a device kernel needs them (so a chain of fallbacks never round-trips), and a device
 * tensor that was read keeps its host copy (data under an id never changes: tfjs tensors are
 * immutable, `Variable.assign` moves to a new id).
 */
interface Entry {
  dtype: tfc.DataType;
  shape: number[];
  size: number;
  ptr: DevicePtr;
  values: HostValues | null;
  refCount: number;
}

/** dtypes the device holds (4 bytes each); bool, string and complex64 stay on the host. */
export const DEVICE_DTYPES: ReadonlySet<tfc.DataType> = new Set(['float32', 'int32']);

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function typedFor(dtype: tfc.DataType, size: number): Float32Array | Int32Array | Uint8Array {
  if (dtype === 'int32') return new Int32Array(size);
  if (dtype === 'bool') return new Uint8Array(size);
  return new Float32Array(size);
}

/** Host values as the typed array the device copy is made from (tfjs may hand plain arrays). */
function asTyped(values: HostValues, dtype: tfc.DataType): Float32Array | Int32Array {
  if (dtype === 'int32') return values instanceof Int32Array ? values : Int32Array.from(values as ArrayLike<number>);
  return values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
}

let nextId = 0;

/** Whether the engine still tracks `dataId` (on any backend). */
function engineKnows(dataId: DataId): boolean {
  const state = (tfc.engine() as unknown as { state: { tensorInfo: WeakMap<DataId, unknown> } }).state;
  return state.tensorInfo.has(dataId);
}

/**
 * The tfjs KernelBackend of "cuda": data ids map to device buffers from the addon's caching
 * allocator; every transfer and kernel goes on its one stream. Kernels not implemented on the
 * device run as the cpu backend's kernel on host copies (see fallback.ts), counted.
 *
 * Built on the DeviceMemory interface only, so its bookkeeping (write, read, move, refcounts,
 * dispose) is tested with a fake device on machines without a GPU.
 */
export class CudaBackend extends tfc.KernelBackend {
  private readonly entries = new Map<DataId, Entry>();
  /** Kernels that fell back to the host since the backend was created, by kernel name. */
  readonly fallbacks = new Map<string, number>();
  /** Bytes copied to and from the device, for the report (and to notice a chain of fallbacks). */
  readonly transfers = { uploads: 0, uploadBytes: 0, downloads: 0, downloadBytes: 0 };

  constructor(
    readonly device: DeviceMemory,
    /** The cpu backend the fallback kernels run on (host staging). */
    readonly host: tfc.KernelBackend,
  ) {
    super();
  }

  // ---- storage -----------------------------------------------------------------------

  private add(dataId: DataId, entry: Entry): void {
    this.entries.set(dataId, entry);
  }

  private entry(dataId: DataId): Entry {
    let e = this.entries.get(dataId);
    if (!e && engineKnows(dataId)) {
      // Data made on another backend: the engine reads it there and move()s it here.
      tfc.engine().moveData(this, dataId);
      e = this.entries.get(dataId);
    }
    if (!e) {
      throw new TesseraError(
        'cuda: a tensor was used after its data was disposed (or it belongs to another backend); ' +
          'keep tensors alive outside tf.tidy, or clone them before disposing.',
      );
    }
    return e;
  }

  has(dataId: DataId): boolean {
    return this.entries.has(dataId);
  }

  override write(values: HostValues, shape: number[], dtype: tfc.DataType): DataId {
    const dataId = { id: nextId++ };
    this.add(dataId, { dtype, shape, size: sizeOf(shape), ptr: 0, values, refCount: 1 });
    return dataId;
  }

  override move(dataId: DataId, values: HostValues, shape: number[], dtype: tfc.DataType, refCount: number): void {
    this.add(dataId, { dtype, shape, size: sizeOf(shape), ptr: 0, values, refCount });
  }

  /** A TensorInfo over host values (what fallbacks and small results produce). */
  makeTensorInfo(shape: number[], dtype: tfc.DataType, values?: HostValues): tfc.TensorInfo {
    const v = values ?? typedFor(dtype, sizeOf(shape));
    return { dataId: this.write(v, shape, dtype), shape, dtype };
  }

  /** Adopts an id made elsewhere (a fallback's output) with its host values. */
  adopt(dataId: DataId, values: HostValues, shape: number[], dtype: tfc.DataType): void {
    this.add(dataId, { dtype, shape, size: sizeOf(shape), ptr: 0, values, refCount: 1 });
  }

  /** A new device tensor for a kernel to write (contents undefined; `zeros` fills it). */
  alloc(shape: number[], dtype: tfc.DataType = 'float32', zeros = false): tfc.TensorInfo {
    if (!DEVICE_DTYPES.has(dtype)) throw new TesseraError(`cuda: no device storage for dtype ${dtype}.`);
    const size = sizeOf(shape);
    const dataId = { id: nextId++ };
    const ptr = size > 0 ? this.device.malloc(size * 4) : 0;
    if (zeros && size > 0) this.device.memset(ptr, size * 4);
    this.add(dataId, { dtype, shape, size, ptr, values: size > 0 ? null : typedFor(dtype, 0), refCount: 1 });
    return { dataId, shape, dtype };
  }

  /** The device pointer of a tensor, uploading its host values first if need be (0 for empty tensors). */
  ptr(t: tfc.TensorInfo): DevicePtr {
    const e = this.entry(t.dataId);
    if (e.ptr || e.size === 0) return e.ptr;
    if (!DEVICE_DTYPES.has(e.dtype)) throw new TesseraError(`cuda: no device storage for dtype ${e.dtype}.`);
    const typed = asTyped(e.values!, e.dtype);
    e.ptr = this.device.malloc(e.size * 4);
    this.device.upload(e.ptr, typed);
    this.transfers.uploads++;
    this.transfers.uploadBytes += e.size * 4;
    return e.ptr;
  }

  /** Whether the data is (also) on the device: a kernel's inputs that are not get uploaded. */
  onDevice(dataId: DataId): boolean {
    const e = this.entry(dataId);
    return e.ptr !== 0;
  }

  override readSync(dataId: DataId): HostValues {
    const e = this.entry(dataId);
    if (e.values) return e.values;
    const out = typedFor(e.dtype, e.size);
    this.device.download(e.ptr, out);
    this.transfers.downloads++;
    this.transfers.downloadBytes += out.byteLength;
    e.values = out;
    return out;
  }

  override async read(dataId: DataId): Promise<HostValues> {
    const e = this.entry(dataId);
    if (e.values) return e.values;
    const buffer = await this.device.downloadAsync(e.ptr, e.size * 4);
    this.transfers.downloads++;
    this.transfers.downloadBytes += buffer.byteLength;
    const out = e.dtype === 'int32' ? new Int32Array(buffer) : new Float32Array(buffer);
    // Disposed while the copy was in flight: hand the values out, keep nothing.
    if (this.entries.get(dataId) === e) e.values = out;
    return out;
  }

  override readToGPU(): never {
    throw new TesseraError('cuda: readToGPU (WebGL/WebGPU interop) is not supported; read with data() or dataSync().');
  }

  override refCount(dataId: DataId): number {
    return this.entries.get(dataId)?.refCount ?? 0;
  }

  override incRef(dataId: DataId): void {
    this.entry(dataId).refCount++;
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const e = this.entries.get(dataId);
    if (!e) return true;
    e.refCount--;
    if (!force && e.refCount > 0) return false;
    if (e.ptr) this.device.free(e.ptr);
    this.entries.delete(dataId);
    return true;
  }

  /** Frees an intermediate result a kernel made and does not return. */
  disposeIntermediateTensorInfo(t: tfc.TensorInfo): void {
    this.disposeData(t.dataId);
  }

  override numDataIds(): number {
    return this.entries.size;
  }

  override memory(): { unreliable: boolean; reasons?: string[] } & Record<string, unknown> {
    const s = this.device.stats();
    return {
      unreliable: false,
      numBytesInGPU: s.allocatedBytes,
      numBytesInGPUAllocated: s.reservedBytes,
      numBytesInGPUFree: s.reservedBytes - s.allocatedBytes,
      allocator: s,
    };
  }

  override timerAvailable(): boolean {
    return true;
  }

  /** Wall time of `f` up to the stream finishing its work: kernels are asynchronous. */
  override async time(f: () => void): Promise<tfc.BackendTimingInfo> {
    const t0 = performance.now();
    f();
    this.device.synchronize();
    return { kernelMs: performance.now() - t0 };
  }

  override floatPrecision(): 32 {
    return 32;
  }

  override epsilon(): number {
    return 1e-7;
  }

  override dispose(): void {
    for (const e of this.entries.values()) if (e.ptr) this.device.free(e.ptr);
    this.entries.clear();
  }
}
