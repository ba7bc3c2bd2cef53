import { type FusedKernelTable, TesseraError } from '@tessera/tensor-core';
import type { TensorInfo } from '@tessera/tensor-core/tfjs';
import type { NativeAddon } from './addon.js';
import { asF32, asI32, type NativeContext, out } from './storage.js';

/** The int8 GEMM's code paths (native/int8.cc); "auto" takes the best this CPU has. */
export const INT8_PATHS = ['auto', 'scalar', 'avx2', 'vnni'] as const;
export type Int8Path = (typeof INT8_PATHS)[number];
const PATH_CODE: Record<Int8Path, number> = { auto: -1, scalar: 0, avx2: 1, vnni: 2 };
const CODE_PATH = ['scalar', 'avx2', 'vnni'] as const;

function parsePath(value: string, source: string): Int8Path {
  if ((INT8_PATHS as readonly string[]).includes(value)) return value as Int8Path;
  throw new TesseraError(`${source} = ${JSON.stringify(value)}: expected one of ${INT8_PATHS.join(', ')}.`);
}

let forced: Int8Path = parsePath(process.env.TESSERA_NATIVE_INT8_PATH ?? 'auto', 'TESSERA_NATIVE_INT8_PATH');
let lastPath: (typeof CODE_PATH)[number] | undefined;

/**
 * Which int8 path the native TesseraInt8Linear runs: TESSERA_NATIVE_INT8_PATH at load, or
 * set here (tests reach the AVX2 and scalar paths on a VNNI machine this way). A path the
 * CPU lacks is an error at the next call, never a silent substitute.
 */
export const int8Dispatch = {
  set(path: Int8Path): void {
    forced = parsePath(path, 'int8Dispatch.set');
  },
  get: (): Int8Path => forced,
  /** The path the last call ran. */
  last: () => lastPath,
};

interface PackedWeight {
  packed: Int8Array;
  colsum: Int32Array;
}

/**
 * A weight's 16-output panels, packed once per weight tensor: keyed by its storage (dataId),
 * which tfjs never rewrites in place (a Variable's assign gets a new one), and dropped with it.
 */
const packedWeights = new WeakMap<object, PackedWeight>();

function packedOf(addon: NativeAddon, args: { backend: unknown }, weight: TensorInfo): PackedWeight {
  const hit = packedWeights.get(weight.dataId);
  if (hit) return hit;
  const [N, K] = weight.shape as [number, number];
  const panels = Math.ceil(N / 16);
  const groups = Math.ceil(K / 4);
  const entry = { packed: new Int8Array(panels * groups * 64), colsum: new Int32Array(N) };
  addon.int8PackWeights(asI32(args, weight), N, K, entry.packed, entry.colsum);
  packedWeights.set(weight.dataId, entry);
  return entry;
}

/** TesseraInt8Linear on the addon: bit-identical to the cpu reference on every path. */
export function int8Kernels({ addon, pool }: NativeContext) {
  return {
    TesseraInt8Linear: (args) => {
      const { x, weight, scales, bias } = args.inputs;
      const [rows, K] = x.shape as [number, number];
      const N = weight.shape[0]!;
      const { packed, colsum } = packedOf(addon, args, weight);
      const y = pool.alloc(rows * N);
      const b = bias ? asF32(args, bias) : null;
      const code = addon.int8Linear(
        asF32(args, x),
        rows,
        K,
        packed,
        colsum,
        N,
        asF32(args, scales),
        b,
        y,
        PATH_CODE[forced],
      );
      lastPath = CODE_PATH[code];
      return out(args, [rows, N], y);
    },
  } satisfies Partial<FusedKernelTable>;
}
