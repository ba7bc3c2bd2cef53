/**
 * @tessera/kernels-webgpu — backend "webgpu": tfjs-backend-webgpu for the standard kernels,
 * on Dawn (npm `webgpu`) in Node and on `navigator.gpu` in a browser, and WGSL kernels for
 * every Tessera fused op (./kernels.ts gathers them, one module per op family).
 *
 * Importing registers the backend and its kernels but loads no native code: the first
 * `isAvailable()` (or `useBackend('webgpu')`) probes for an adapter. A software adapter
 * (Mesa's lavapipe) is available but reported as `hardware: false`, so "auto" skips it
 * unless "webgpu" is asked for by name.
 *
 * In Node read results with `await t.data()` / `await t.array()`: synchronous reads of
 * GPU-resident data need OffscreenCanvas, which Node lacks.
 */
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { type FusedKernelName, registerBackend, registerFusedKernels, TesseraError } from '@tessera/tensor-core';
import * as tfc from '@tessera/tensor-core/tfjs';
import { registerChunkedAddN } from './add_n.js';
import { useWebGpuMatMul } from './batch_matmul.js';
import { webgpuKernels } from './kernels.js';
import { describeAdapter, type GpuAdapterLike, requestAdapter, type WebGpuStatus, webgpuStatus } from './gpu.js';
import {
  accumulatorLimit,
  enableSubgroupShaders,
  fixedSubgroupSize,
  maxAccumulators,
  setMaxAccumulators,
  setSubgroupSize,
  subgroupSize,
} from './subgroups.js';

export { setWebGpuMatMulTiling, useWebGpuMatMul, webgpuMatMul } from './batch_matmul.js';
export type { MatMulTiling } from './matmul.js';
export type { GpuAdapterInfo, WebGpuStatus } from './gpu.js';
export { isSoftwareAdapter, webgpuStatus } from './gpu.js';

export const BACKEND_NAME = 'webgpu';

/**
 * The subgroup size Tessera's kernels on the "webgpu" backend rely on (its device was
 * created with WebGPU subgroups at one fixed size), or undefined: no subgroups there, or
 * TESSERA_WEBGPU_SUBGROUPS=0, or the backend not created yet.
 */
export function webgpuSubgroupSize(): number | undefined {
  return subgroupSize(tfc.engine().registry[BACKEND_NAME]);
}

/**
 * The most vec4 accumulators one invocation of Tessera's matmul keeps on the "webgpu"
 * backend's device (its shader compiler's budget: 16 on SwiftShader, see ./subgroups.ts), or
 * undefined: no limit known there, or the backend not created yet.
 */
export function webgpuAccumulatorLimit(): number | undefined {
  return maxAccumulators(tfc.engine().registry[BACKEND_NAME]);
}

interface DeviceLike {
  readonly limits: Record<string, number>;
  readonly lost: Promise<{ reason: string; message: string }>;
  destroy(): void;
}

interface BufferManagerLike {
  acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): unknown;
}

let deviceLost: string | undefined;

/** Why the current device was lost (undefined while it is fine). */
export function webgpuDeviceLost(): string | undefined {
  return deviceLost;
}

/**
 * Upstream's backend with one change: a synchronous read of GPU-resident data in a runtime
 * without OffscreenCanvas throws a message that says what to do, instead of a ReferenceError.
 * CPU-resident data, strings and complex64 (read through its real and imaginary parts,
 * each checked on its own) go to upstream unchanged.
 */
class TesseraWebGpuBackend extends WebGPUBackend {
  override readSync(dataId: object): ReturnType<WebGPUBackend['readSync']> {
    const data = (
      this as unknown as { tensorMap: { get(id: object): { values?: unknown; dtype: string } } }
    ).tensorMap.get(dataId);
    if (
      data.values == null &&
      data.dtype !== 'string' &&
      data.dtype !== 'complex64' &&
      typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas === 'undefined'
    ) {
      throw new TesseraError(
        'webgpu: synchronous reads (dataSync, arraySync, bufferSync) of GPU data need OffscreenCanvas, which this ' +
          'runtime (Node) lacks. Read with `await t.data()` or `await t.array()`.',
      );
    }
    return super.readSync(dataId);
  }
}

/** Guards buffer creation: a size over the device's limits gets an error that says so, not a lost device. */
function guardBufferSizes(backend: WebGPUBackend, device: DeviceLike): void {
  const manager = (backend as unknown as { bufferManager: BufferManagerLike }).bufferManager;
  const acquire = manager.acquireBuffer.bind(manager);
  const maxBuffer = device.limits.maxBufferSize ?? Number.POSITIVE_INFINITY;
  const maxBinding = device.limits.maxStorageBufferBindingSize ?? Number.POSITIVE_INFINITY;
  const storage = (globalThis as unknown as { GPUBufferUsage: { STORAGE: number } }).GPUBufferUsage.STORAGE;
  manager.acquireBuffer = (size, usage, mappedAtCreation, reuse) => {
    const limit = usage & storage ? Math.min(maxBuffer, maxBinding) : maxBuffer;
    if (size > limit) {
      throw new TesseraError(
        `webgpu: a tensor needs a ${formatBytes(size)} buffer but this device allows at most ${formatBytes(limit)} ` +
          `(${usage & storage ? 'maxStorageBufferBindingSize' : 'maxBufferSize'}). Use smaller batches or sequences, ` +
          'or the "native"/"cpu" backend for this size.',
      );
    }
    return acquire(size, usage, mappedAtCreation, reuse);
  };
}

function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${n} B`;
}

/** Creates the tfjs WebGPU backend on a fresh device (what tfjs runs for `setBackend('webgpu')`). */
async function createWebGpuBackend(): Promise<tfc.KernelBackend> {
  const status = await webgpuStatus();
  if (!status.available) throw new TesseraError(`Backend "webgpu" is not available here: ${status.reason}.`);
  const { adapter, error } = await requestAdapter();
  if (!adapter) throw new TesseraError(`Backend "webgpu": ${error}.`);
  const device = (await adapter.requestDevice(deviceDescriptor(adapter))) as DeviceLike;
  const subgroups = fixedSubgroupSize(adapter);
  if (subgroups) enableSubgroupShaders(device as never);
  deviceLost = undefined;
  void device.lost.then((info) => {
    if (info.reason === 'destroyed') return;
    deviceLost = `${info.reason || 'unknown'}: ${info.message}`;
    console.error(
      `tessera: the WebGPU device was lost (${deviceLost}). Tensors on "webgpu" are gone; ` +
        'call tf.removeBackend("webgpu") and useBackend("webgpu") again, or switch backends.',
    );
  });
  applyEnvFlags();
  const backend = new TesseraWebGpuBackend(device as never, adapter.info as never);
  guardBufferSizes(backend, device);
  if (subgroups) setSubgroupSize(backend, subgroups);
  const limit = accumulatorLimit(adapter);
  if (limit) setMaxAccumulators(backend, limit);
  return backend;
}

/**
 * TESSERA_WEBGPU_CPU_FORWARD=0 turns off upstream's forwarding of small kernels on
 * CPU-resident inputs to CPU implementations (tfjs flag WEBGPU_CPU_FORWARD), so every
 * kernel runs as WGSL: what conformance should measure.
 */
function applyEnvFlags(): void {
  const forward = typeof process !== 'undefined' ? process.env?.TESSERA_WEBGPU_CPU_FORWARD : undefined;
  if (forward === '0' || forward === 'false') tfc.env().set('WEBGPU_CPU_FORWARD', false);
  else if (forward === '1' || forward === 'true') tfc.env().set('WEBGPU_CPU_FORWARD', true);
}

/** Same as upstream: the adapter's own limits, and timestamp queries when offered; subgroups too. */
function deviceDescriptor(adapter: GpuAdapterLike) {
  const limits = adapter.limits;
  const requiredFeatures: string[] = [];
  if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  // Subgroups at one fixed size: the matmul shares loaded operands across a subgroup.
  if (fixedSubgroupSize(adapter)) requiredFeatures.push('subgroups');
  return {
    requiredFeatures,
    requiredLimits: {
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
    },
  };
}

// In a browser upstream registers its own factory at import; ours replaces it (clear
// errors, the size guard). tfjs priority 0: plain tfjs never picks webgpu implicitly.
if (tfc.findBackendFactory(BACKEND_NAME)) tfc.removeBackend(BACKEND_NAME);
tfc.registerBackend(BACKEND_NAME, createWebGpuBackend, 0);

/**
 * Tessera's WGSL kernels for the fused ops, registered under the op names. Set
 * TESSERA_WEBGPU_FUSED_KERNELS=0 to leave them out (every fused op then runs its reference
 * composition on upstream kernels: the baseline fused kernels are measured against).
 */
export const fusedKernelNames: readonly FusedKernelName[] =
  typeof process !== 'undefined' && process.env?.TESSERA_WEBGPU_FUSED_KERNELS === '0'
    ? []
    : registerFusedKernels(BACKEND_NAME, webgpuKernels);

registerChunkedAddN();

/** Tessera's WGSL BatchMatMul (./batch_matmul.ts); TESSERA_WEBGPU_MATMUL=0 keeps upstream's. */
if (typeof process === 'undefined' || process.env?.TESSERA_WEBGPU_MATMUL !== '0') useWebGpuMatMul('tessera');

registerBackend(
  BACKEND_NAME,
  async () => {
    const status = await webgpuStatus();
    if (!status.available) throw new TesseraError(`Backend "webgpu" is not available here: ${status.reason}.`);
  },
  {
    description: 'WebGPU backend: tfjs-backend-webgpu on Dawn (Node) or navigator.gpu (browser)',
    priority: 30,
    package: '@tessera/kernels-webgpu',
    isAvailable: async () => {
      const s: WebGpuStatus = await webgpuStatus();
      if (deviceLost) return { available: false, hardware: s.hardware, reason: `device lost (${deviceLost})` };
      return { available: s.available, hardware: s.hardware, reason: s.reason };
    },
  },
);

/** One line naming the adapter the backend runs on (or why there is none). */
export async function describeWebGpu(): Promise<string> {
  const s = await webgpuStatus();
  return s.available ? `${describeAdapter(s.adapter)}${s.hardware ? '' : ' (software)'} via ${s.source}` : s.reason;
}
