/**
 * The one module that owns the WebGPU bootstrap. In a browser it uses `navigator.gpu`;
 * in Node it loads Dawn's bindings (the npm `webgpu` package), installs the WebGPU
 * constants tfjs-backend-webgpu reads as globals (GPUBufferUsage, GPUMapMode, ...) and
 * `navigator.gpu`. Nothing else in this package touches globals. Everything is lazy:
 * importing the package loads no native code; the first availability probe does.
 */

/** The parts of the WebGPU API this module uses (no dependency on @webgpu/types). */
export interface GpuAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter?: boolean;
  /** Subgroup sizes the adapter may run (WebGPU 'subgroups'). */
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
}

export interface GpuAdapterLike {
  readonly info?: GpuAdapterInfo;
  readonly isFallbackAdapter?: boolean;
  readonly features: { has(name: string): boolean };
  readonly limits: Record<string, number>;
  requestDevice(descriptor?: unknown): Promise<unknown>;
}

export interface GpuLike {
  requestAdapter(options?: {
    powerPreference?: string;
    forceFallbackAdapter?: boolean;
  }): Promise<GpuAdapterLike | null>;
}

/** What the probe found: shown by `isAvailable()` and in every "not available" error. */
export interface WebGpuStatus {
  available: boolean;
  /** One line: the adapter found, or what is missing and what to do. */
  reason: string;
  /** False for a software adapter (lavapipe, SwiftShader): "auto" skips it unless asked for by name. */
  hardware: boolean;
  /** Where the GPU came from. */
  source: 'navigator.gpu' | 'dawn' | 'none';
  adapter?: GpuAdapterInfo;
  limits?: { maxBufferSize: number; maxStorageBufferBindingSize: number };
}

const SETUP_HINT =
  'On Debian without a GPU run `node node_modules/@tessera/kernels-webgpu/scripts/setup-lavapipe.mjs` as root ' +
  "(installs Mesa >= 25's lavapipe software Vulkan from bookworm-backports); with a GPU, install its Vulkan driver";

let gpuPromise: Promise<{ gpu?: GpuLike; source: WebGpuStatus['source']; error?: string }> | undefined;
let statusPromise: Promise<WebGpuStatus> | undefined;

/** Dawn creation flags for Node (e.g. "backend=vulkan"), from TESSERA_WEBGPU_DAWN_FLAGS (comma-separated). */
function dawnFlags(): string[] {
  const raw = typeof process !== 'undefined' ? process.env?.TESSERA_WEBGPU_DAWN_FLAGS : undefined;
  return raw
    ? raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];
}

function isNode(): boolean {
  return typeof process !== 'undefined' && !!process.versions?.node;
}

async function loadGpu(): Promise<{ gpu?: GpuLike; source: WebGpuStatus['source']; error?: string }> {
  const g = globalThis as unknown as { navigator?: { gpu?: GpuLike } };
  if (g.navigator?.gpu) return { gpu: g.navigator.gpu, source: 'navigator.gpu' };
  if (!isNode())
    return { source: 'none', error: 'this browser has no navigator.gpu (WebGPU is disabled or unsupported)' };
  // Vulkan loaders and Mesa want a runtime directory; containers and CI often lack one.
  if (!process.env.XDG_RUNTIME_DIR) {
    const { tmpdir } = await import('node:os');
    process.env.XDG_RUNTIME_DIR = tmpdir();
  }
  let dawn: { create(flags: string[]): GpuLike; globals: Record<string, unknown> };
  try {
    // A variable specifier keeps browser bundlers from pulling in the Node addon.
    const specifier = 'webgpu';
    dawn = await import(specifier);
  } catch (err) {
    return {
      source: 'none',
      error: `the npm package "webgpu" (Dawn's Node bindings) could not be loaded: ${(err as Error).message.split('\n')[0]}`,
    };
  }
  let gpu: GpuLike;
  try {
    gpu = dawn.create(dawnFlags());
  } catch (err) {
    return { source: 'none', error: `Dawn could not start: ${(err as Error).message.split('\n')[0]}` };
  }
  // tfjs-backend-webgpu reads GPUBufferUsage/GPUMapMode/... and navigator.gpu as globals.
  for (const [name, value] of Object.entries(dawn.globals)) {
    if (!(name in globalThis)) (globalThis as Record<string, unknown>)[name] = value;
  }
  if (g.navigator) {
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, enumerable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', {
      value: { gpu },
      configurable: true,
      writable: true,
      enumerable: false,
    });
  }
  return { gpu, source: 'dawn' };
}

/** The GPU entry point (navigator.gpu or Dawn), created once. */
export function gpuEntry(): Promise<{ gpu?: GpuLike; source: WebGpuStatus['source']; error?: string }> {
  gpuPromise ??= loadGpu();
  return gpuPromise;
}

/** Software rasterisers that report themselves as adapters. */
export function isSoftwareAdapter(info: GpuAdapterInfo | undefined, fallback?: boolean): boolean {
  if (fallback || info?.isFallbackAdapter) return true;
  if (!info) return false;
  if (info.architecture === 'software') return true;
  return /llvmpipe|lavapipe|swiftshader|software/i.test(`${info.description} ${info.device}`);
}

export function describeAdapter(info: GpuAdapterInfo | undefined): string {
  if (!info) return 'unknown adapter';
  const text = info.description || [info.vendor, info.architecture, info.device].filter(Boolean).join(' ');
  return text.trim() || 'unnamed adapter';
}

/** A fresh adapter (WebGPU allows one device per adapter), or why there is none. */
export async function requestAdapter(): Promise<{ adapter?: GpuAdapterLike; error?: string }> {
  const entry = await gpuEntry();
  if (!entry.gpu) return { error: entry.error ?? 'no WebGPU implementation' };
  try {
    const adapter =
      (await entry.gpu.requestAdapter({ powerPreference: 'high-performance' })) ??
      (await entry.gpu.requestAdapter({ forceFallbackAdapter: true }));
    if (!adapter) {
      return {
        error:
          entry.source === 'dawn'
            ? 'Dawn found no WebGPU adapter (no usable Vulkan driver)'
            : 'navigator.gpu.requestAdapter() returned null',
      };
    }
    return { adapter };
  } catch (err) {
    return { error: `requestAdapter failed: ${(err as Error).message.split('\n')[0]}` };
  }
}

async function probe(): Promise<WebGpuStatus> {
  const entry = await gpuEntry();
  const { adapter, error } = await requestAdapter();
  if (!adapter) {
    const hint = entry.source === 'navigator.gpu' ? 'enable WebGPU in the browser' : SETUP_HINT;
    return { available: false, hardware: false, source: entry.source, reason: `${error}. ${hint}` };
  }
  const info = adapter.info;
  const software = isSoftwareAdapter(info, adapter.isFallbackAdapter);
  const name = describeAdapter(info);
  return {
    available: true,
    hardware: !software,
    source: entry.source,
    reason: software ? `software adapter only (${name}): correct but slow` : `WebGPU adapter ${name}`,
    ...(info ? { adapter: info } : {}),
    limits: {
      maxBufferSize: adapter.limits.maxBufferSize ?? 0,
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize ?? 0,
    },
  };
}

/** Probes for a WebGPU adapter once (loading Dawn in Node) and says what it found. */
export function webgpuStatus(): Promise<WebGpuStatus> {
  statusPromise ??= probe().catch(
    (err: Error): WebGpuStatus => ({
      available: false,
      hardware: false,
      source: 'none',
      reason: `probing WebGPU failed: ${err.message.split('\n')[0]}`,
    }),
  );
  return statusPromise;
}
