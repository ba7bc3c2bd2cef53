/**
 * AddN for "webgpu" that works for any number of inputs: upstream's AddN binds every input
 * as a storage buffer of one shader, and a device allows only maxStorageBuffersPerShaderStage
 * of them (8 on lavapipe and many GPUs; the output takes one), so upstream's pipeline is
 * invalid past 7 inputs and the result is garbage (optim's finite check adds one probe per
 * parameter). Past the limit this sums the inputs in chunks with upstream's kernel.
 */
import * as tfc from '@tessera/tensor-core/tfjs';
import { storage } from './program.js';

const KERNEL = 'AddN';
const BACKEND = 'webgpu';

export function registerChunkedAddN(): void {
  const upstream = tfc.getKernel(KERNEL, BACKEND);
  if (!upstream) return;
  tfc.unregisterKernel(KERNEL, BACKEND);
  tfc.registerKernel({
    ...upstream,
    kernelFunc: (args) => {
      const inputs = args.inputs as unknown as tfc.TensorInfo[];
      const limits = (args.backend as unknown as { device?: { limits?: Record<string, number> } }).device?.limits;
      const chunk = Math.max(2, (limits?.maxStorageBuffersPerShaderStage ?? 8) - 1);
      if (inputs.length <= chunk) return upstream.kernelFunc(args);
      let partials = inputs;
      const temporaries: tfc.TensorInfo[] = [];
      while (partials.length > chunk) {
        const next: tfc.TensorInfo[] = [];
        for (let i = 0; i < partials.length; i += chunk) {
          const part = partials.slice(i, i + chunk);
          if (part.length === 1) {
            next.push(part[0]!);
            continue;
          }
          const sum = upstream.kernelFunc({
            ...args,
            inputs: part as unknown as tfc.NamedTensorInfoMap,
          }) as tfc.TensorInfo;
          temporaries.push(sum);
          next.push(sum);
        }
        partials = next;
      }
      const out = upstream.kernelFunc({
        ...args,
        inputs: partials as unknown as tfc.NamedTensorInfoMap,
      }) as tfc.TensorInfo;
      for (const t of temporaries) storage(args.backend).disposeData(t.dataId);
      return out;
    },
  });
}
