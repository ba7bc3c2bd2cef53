/** WGSL kernel for the AdamW update: one elementwise program per output. */
import type { FusedKernelTable } from '@tessera/tensor-core';
import type { TensorInfo } from '@tessera/tensor-core/tfjs';
import { elementwise, f32, storage } from './program.js';

export const adamwKernels = {
  TesseraAdamW: ({ inputs, backend, attrs: a }) => {
    const shape = inputs.param.shape;
    // 1 - beta in float64 on the host: in f32 on the GPU, 1 - 0.999 is off by 1.3e-5 relative.
    const uniforms =
      'beta1 : f32, beta2 : f32, oneMinusBeta1 : f32, oneMinusBeta2 : f32, decay : f32, stepSize : f32, sqrtBc2 : f32, eps : f32,';
    const values = [
      f32(a.beta1),
      f32(a.beta2),
      f32(1 - a.beta1),
      f32(1 - a.beta2),
      f32(1 - a.lr * a.weightDecay),
      f32(a.lr / (1 - a.beta1 ** a.step)),
      f32(Math.sqrt(1 - a.beta2 ** a.step)),
      f32(a.eps),
    ];
    const m1 = 'uniforms.beta1 * M[i] + uniforms.oneMinusBeta1 * G[i]';
    const v1 = 'uniforms.beta2 * V[i] + uniforms.oneMinusBeta2 * G[i] * G[i]';
    // Each program names only the inputs it reads: WGSL drops unused bindings from the layout.
    const run = (which: string, names: string[], ins: TensorInfo[], body: string) =>
      storage(backend).runWebGPUProgram(
        elementwise(`tesseraAdamW_${which}`, names, shape, body, uniforms),
        ins,
        'float32',
        values,
      );
    const { param, grad, m, v } = inputs;
    return [
      run(
        'param',
        ['P', 'G', 'M', 'V'],
        [param, grad, m, v],
        `v = P[i] * uniforms.decay - (uniforms.stepSize * (${m1})) / (sqrt(${v1}) / uniforms.sqrtBc2 + uniforms.eps);`,
      ),
      run('m', ['G', 'M'], [grad, m], `v = ${m1};`),
      run('v', ['G', 'V'], [grad, v], `v = ${v1};`),
    ];
  },
} satisfies Partial<FusedKernelTable>;
