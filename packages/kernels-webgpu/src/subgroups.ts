/**
 * WGSL subgroups for Tessera's kernels: the device is created with the 'subgroups' feature
 * when the adapter offers it with one fixed subgroup size (lavapipe: 8, its SIMD width), and
 * a shader that uses subgroup built-ins gets WGSL's `enable subgroups;` prepended when it is
 * compiled (upstream assembles the module and has no place for directives).
 *
 * A kernel may rely on subgroups only where `subgroupSize(backend)` is a number: then a
 * workgroup of exactly that many invocations is one whole subgroup.
 */

interface AdapterLike {
  readonly features: { has(name: string): boolean };
  readonly info?: { subgroupMinSize?: number; subgroupMaxSize?: number };
}

interface ShaderDevice {
  createShaderModule(descriptor: { code: string; label?: string }): unknown;
}

/** Shaders that contain this line are compiled with `enable subgroups;`. */
export const SUBGROUPS_MARKER = '// tessera: enable subgroups';

const sizes = new WeakMap<object, number>();

/** The adapter's subgroup size when it offers subgroups at one fixed size (4–64), else undefined. */
export function fixedSubgroupSize(adapter: AdapterLike): number | undefined {
  // Measured and tested on Dawn in Node only: in headless Chromium's WebGPU the subgroup
  // matmul stalls until the device is lost (apps/browser's test), so browsers keep the
  // register-block kernel until that is understood.
  if (typeof process === 'undefined' || !process.versions?.node) return undefined;
  if (!adapter.features.has('subgroups')) return undefined;
  const min = adapter.info?.subgroupMinSize;
  const max = adapter.info?.subgroupMaxSize;
  if (!min || min !== max || min < 4 || min > 64 || (min & (min - 1)) !== 0) return undefined;
  return min;
}

/** Compiles shaders that carry SUBGROUPS_MARKER with subgroups enabled. */
export function enableSubgroupShaders(device: ShaderDevice): void {
  const create = device.createShaderModule.bind(device);
  device.createShaderModule = (descriptor) =>
    create(
      descriptor.code.includes(SUBGROUPS_MARKER)
        ? { ...descriptor, code: `enable subgroups;\n${descriptor.code}` }
        : descriptor,
    );
}

/** Records that `backend`'s device runs subgroups of `size`. */
export function setSubgroupSize(backend: object, size: number): void {
  sizes.set(backend, size);
}

/** The subgroup size kernels on `backend` may rely on, or undefined (no subgroups there). */
export function subgroupSize(backend: unknown): number | undefined {
  if (typeof process !== 'undefined' && process.env?.TESSERA_WEBGPU_SUBGROUPS === '0') return undefined;
  return typeof backend === 'object' && backend !== null ? sizes.get(backend) : undefined;
}
