/**
 * Registers ./matmul.ts's WGSL matmul as "webgpu"'s BatchMatMul kernel, in place of
 * upstream's, keeping upstream's kernel for what ours does not cover: non-float32 operands,
 * more than 4 batch dimensions, more than 65,535 workgroups along a dispatch dimension, and
 * empty outputs (upstream returns its own empties); an empty sum (K = 0) is zeros here.
 * With WebGPU subgroups (./subgroups.ts) it runs the subgroup kernel. The linear layers' products
 * (x·W, dY·Wᵀ, Xᵀ·dY) and attention's batched ones all come here: tf.matMul and its
 * gradients are BatchMatMul (tf.fused.matMul, _FusedMatMul, stays upstream's; no Tessera
 * model calls it).
 * TESSERA_WEBGPU_MATMUL=0 keeps upstream's kernel (the baseline to measure against).
 */
import * as tfc from '@tessera/tensor-core/tfjs';
import { autoTiling, deviceTiling, type MatMulTiling, matMulProblem, matMulProgram, runMatMul } from './matmul.js';
import { zeros } from './program.js';
import { maxAccumulators, subgroupSize } from './subgroups.js';

const BACKEND = 'webgpu';
const KERNEL = 'BatchMatMul';

type KernelFunc = tfc.KernelConfig['kernelFunc'];

let upstream: tfc.KernelConfig | undefined;
let tiling: MatMulTiling | undefined;

/**
 * Sets the tiling ./matmul.ts compiles (bench/matmul-tiles.mjs compares them); undefined:
 * chosen per product (the subgroup kernel where the device has subgroups, its block within
 * the device's accumulator budget). A set tiling compiles as given, budget or not: on
 * SwiftShader a block over 16 vec4 accumulators (rows × colGroups) stalls the compile.
 */
export function setWebGpuMatMulTiling(t: MatMulTiling | undefined): void {
  tiling = t;
}

const tesseraBatchMatMul: KernelFunc = (args) => {
  const { a, b } = args.inputs as { a: tfc.TensorInfo; b: tfc.TensorInfo };
  const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
  // tfjs-webgpu casts int32 -> float32 by relabelling the tensor: its buffer still holds
  // int32 (the stored dtype says so, and upstream's shaders read it as such). Ours reads f32.
  const stored = (t: tfc.TensorInfo) =>
    (args.backend as unknown as { tensorMap: { get(id: object): { dtype: string } } }).tensorMap.get(t.dataId).dtype;
  if (stored(a) !== 'float32' || stored(b) !== 'float32') return upstream!.kernelFunc(args);
  const problem = matMulProblem(a, b, !!transposeA, !!transposeB);
  // An empty sum (K = 0, e.g. the weight gradient Xᵀ·dY of an empty batch) is zeros; upstream
  // would bind the empty operands and fail.
  if (problem === 'empty K') return zeros(args.backend, outputShape(a, b, !!transposeA, !!transposeB));
  const subgroup = subgroupSize(args.backend);
  const program =
    typeof problem === 'string'
      ? problem
      : matMulProgram(
          problem,
          tiling ? deviceTiling(tiling, subgroup) : autoTiling(problem, subgroup, maxAccumulators(args.backend)),
        );
  if (typeof problem === 'string' || typeof program === 'string') return upstream!.kernelFunc(args);
  return runMatMul(args.backend, a, b, problem, program);
};

function outputShape(a: tfc.TensorInfo, b: tfc.TensorInfo, tA: boolean, tB: boolean): number[] {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const batch = tfc.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  return [...batch, tA ? a.shape[ra - 1]! : a.shape[ra - 2]!, tB ? b.shape[rb - 2]! : b.shape[rb - 1]!];
}

/** Which BatchMatMul "webgpu" runs: Tessera's WGSL kernel or upstream's. */
export function useWebGpuMatMul(which: 'tessera' | 'upstream'): void {
  upstream ??= tfc.getKernel(KERNEL, BACKEND);
  if (!upstream) throw new Error('kernels-webgpu: upstream BatchMatMul is not registered for "webgpu"');
  tfc.unregisterKernel(KERNEL, BACKEND);
  tfc.registerKernel(which === 'tessera' ? { ...upstream, kernelFunc: tesseraBatchMatMul } : upstream);
}

/** The BatchMatMul "webgpu" runs now. */
export function webgpuMatMul(): 'tessera' | 'upstream' {
  return tfc.getKernel(KERNEL, BACKEND)?.kernelFunc === tesseraBatchMatMul ? 'tessera' : 'upstream';
}
