import type { AddonLoad, CudaInit, CudaProbe } from './addon.js';
import { cublasNotFoundMessage, type SearchDir } from './cublas_search.js';

/** Why the backend can or cannot run here; `kind` names the failing layer for tests and tools. */
export type CudaStatusKind =
  | 'ok'
  | 'no-nvcc'
  | 'not-built'
  | 'no-driver'
  | 'old-driver'
  | 'no-device'
  | 'unsupported-device'
  | 'no-cublas'
  | 'error';

export interface CudaStatus {
  available: boolean;
  kind: CudaStatusKind;
  /** One line for the selection notice (the cuBLAS case adds the list of places searched). */
  reason: string;
}

const version = (v: number) => `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;

/**
 * The reason from the addon's device probe, or null when a device is there. Order matters:
 * no driver at all, then a driver too old for the runtime, then no device, then a device
 * this build has no kernels for (`archs`: the build's targets, e.g. ["80", "90a"]).
 */
export function probeProblem(p: CudaProbe, archs: readonly string[]): CudaStatus | null {
  if (p.driverVersion === 0) {
    return {
      available: false,
      kind: 'no-driver',
      reason: 'cuda unavailable: no driver (libcuda.so.1 could not be loaded: install the NVIDIA driver)',
    };
  }
  if (p.error === 'cudaErrorInsufficientDriver') {
    return {
      available: false,
      kind: 'old-driver',
      reason:
        `cuda unavailable: the NVIDIA driver supports CUDA ${version(p.driverVersion)} but the addon was built ` +
        `with CUDA ${version(p.runtimeVersion)} (update the driver)`,
    };
  }
  if (p.error === 'cudaErrorNoDevice' || (!p.error && p.deviceCount === 0)) {
    return { available: false, kind: 'no-device', reason: 'cuda unavailable: no device (the driver sees no CUDA GPU)' };
  }
  if (p.error) {
    return {
      available: false,
      kind: 'error',
      reason: `cuda unavailable: cudaGetDeviceCount failed: ${p.error} (${p.errorString ?? 'no detail'})`,
    };
  }
  const d = p.devices[0];
  if (d && !runsOn(archs, d.major, d.minor)) {
    return {
      available: false,
      kind: 'unsupported-device',
      reason:
        `cuda unavailable: ${d.name} is sm_${d.major}${d.minor} and this build has kernels for ` +
        `${archs.map((a) => `sm_${a}`).join(', ')} only (rebuild with TESSERA_CUDA_ARCHS=${d.major}${d.minor})`,
    };
  }
  return null;
}

/**
 * Whether cubins for `archs` run on compute capability major.minor. The build embeds SASS only
 * (no PTX): sm_XY runs on X.Z for Z >= Y; an "a" target (sm_90a) runs on exactly that one.
 */
export function runsOn(archs: readonly string[], major: number, minor: number): boolean {
  return archs.some((a) => {
    const m = /^(\d+)(\d)(a?)$/.exec(a);
    if (!m) return false;
    const [am, an, exact] = [Number(m[1]), Number(m[2]), m[3] === 'a'];
    return exact ? am === major && an === minor : am === major && minor >= an;
  });
}

/** Every check in order: the build, the driver and device, then cuBLASLt. */
export function cudaStatus(
  load: AddonLoad,
  archs: readonly string[],
  dirs: () => SearchDir[],
  init: (dirs: string[]) => CudaInit,
): CudaStatus & { init?: CudaInit } {
  if (!load.addon) {
    const kind = load.error.includes('built without nvcc') ? 'no-nvcc' : 'not-built';
    return { available: false, kind, reason: load.error };
  }
  const problem = probeProblem(load.addon.probe(), archs);
  if (problem) return problem;
  const searched = dirs();
  let result: CudaInit;
  try {
    result = init(searched.map((d) => d.dir));
  } catch (err) {
    return { available: false, kind: 'error', reason: `cuda unavailable: ${(err as Error).message}` };
  }
  if (!result.cublasLoaded) {
    const major = Math.floor(load.addon.probe().runtimeVersion / 1000);
    return { available: false, kind: 'no-cublas', reason: cublasNotFoundMessage(major, searched, result.attempts) };
  }
  const dev = load.addon.probe().devices[0]!;
  return {
    available: true,
    kind: 'ok',
    reason: `${dev.name} (sm_${dev.major}${dev.minor}, ${(dev.totalMemory / 2 ** 30).toFixed(0)} GiB), cuBLASLt ${result.cublasPath}`,
    init: result,
  };
}
