/**
 * WGSL subgroups for Tessera's kernels: the device is created with the 'subgroups' feature
 * when the adapter offers it with one fixed subgroup size (lavapipe: 8, its SIMD width;
 * SwiftShader, Chromium's WebGPU without a GPU: 4), and a shader that uses subgroup built-ins
 * gets WGSL's `enable subgroups;` prepended when it is compiled (upstream assembles the
 * module and has no place for directives).
 *
 * A kernel may rely on subgroups only where `subgroupSize(backend)` is a number: then a
 * workgroup of exactly that many invocations is one whole subgroup. It must also keep its
 * per-invocation register block within `maxAccumulators(backend)` where that is a number
 * (the shader compiler's budget, see accumulatorLimit).
 */

interface AdapterLike {
  readonly features: { has(name: string): boolean };
  readonly info?: {
    vendor?: string;
    architecture?: string;
    device?: string;
    description?: string;
    subgroupMinSize?: number;
    subgroupMaxSize?: number;
  };
}

interface ShaderDevice {
  createShaderModule(descriptor: { code: string; label?: string }): unknown;
}

/** Shaders that contain this line are compiled with `enable subgroups;`. */
export const SUBGROUPS_MARKER = '// tessera: enable subgroups';

const sizes = new WeakMap<object, number>();
const accumulatorLimits = new WeakMap<object, number>();

/** The adapter's subgroup size when it offers subgroups at one fixed size (4–64), else undefined. */
export function fixedSubgroupSize(adapter: AdapterLike): number | undefined {
  if (!adapter.features.has('subgroups')) return undefined;
  const min = adapter.info?.subgroupMinSize;
  const max = adapter.info?.subgroupMaxSize;
  if (!min || min !== max || min < 4 || min > 64 || (min & (min - 1)) !== 0) return undefined;
  return min;
}

/**
 * The most vec4 accumulators one matmul invocation may keep live across its k loop on
 * `adapter`'s shader compiler, or undefined: no known limit.
 *
 * SwiftShader (what headless Chromium's WebGPU runs on without a GPU: Vulkan "SwiftShader
 * Device (Subzero)", adapter vendor "google", architecture "swiftshader") compiles such a
 * loop in time and memory that explode with the block size. Measured in Chromium 156
 * (apps/browser's page, one 64×64×64 matmul, first call = pipeline compile): 16 accumulators
 * 0.27 s, 20: 1.7 s, 24: 21 s, 32: no pipeline after 145 s, the GPU process at 14 GB when
 * it died (exit code 5; the page sees "A valid external Instance reference no longer
 * exists" and a lost device). 94% of the GPU process's samples are in libvk_swiftshader.so,
 * under 1% in Dawn/Tint; the register kernel with a 16 × 2 block (32, no subgroup
 * operations) stalls the same, so it is the block size, not subgroups: a workgroup of 4 is
 * one subgroup of 4 there and subgroupBroadcast is exact. The subgroup kernel's default
 * tiles (32 or 16 rows × 2 column groups: 64 or 32 accumulators) were what stalled the page.
 * lavapipe compiles the 64 of its default tile (subgroups of 8) for the Node tests and
 * benches, so it has no limit here.
 */
export function accumulatorLimit(adapter: AdapterLike): number | undefined {
  const info = adapter.info;
  if (!info) return undefined;
  const text = `${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`;
  return /swiftshader/i.test(text) ? 16 : undefined;
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

/** Records that `backend`'s shader compiler takes at most `limit` accumulators per invocation. */
export function setMaxAccumulators(backend: object, limit: number): void {
  accumulatorLimits.set(backend, limit);
}

/** The accumulator budget of `backend`'s shader compiler (see accumulatorLimit), or undefined: none known. */
export function maxAccumulators(backend: unknown): number | undefined {
  return typeof backend === 'object' && backend !== null ? accumulatorLimits.get(backend) : undefined;
}

/** The subgroup size kernels on `backend` may rely on, or undefined (no subgroups there). */
export function subgroupSize(backend: unknown): number | undefined {
  if (typeof process !== 'undefined' && process.env?.TESSERA_WEBGPU_SUBGROUPS === '0') return undefined;
  return typeof backend === 'object' && backend !== null ? sizes.get(backend) : undefined;
}
