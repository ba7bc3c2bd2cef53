import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nativeCpuFeatures } from '@tessera/kernels-native';

// The run-time detection must agree with what the kernel reports, so a kernel that
// dispatches on these flags never takes a path the CPU cannot execute.

/** The JSON line a module script prints last, run in a fresh process (features load once). */
function jsonFromChild(script: string, env: Record<string, string>): unknown {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: new URL('..', import.meta.url),
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
  });
  return JSON.parse(out.trim().split('\n').pop()!);
}
describe('cpu feature detection', () => {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '').split(/\s+/));

  it.runIf(flags.size > 1)('matches /proc/cpuinfo for every flag', () => {
    const f = nativeCpuFeatures();
    expect(f).toEqual({
      avx2: flags.has('avx2'),
      fma: flags.has('fma'),
      avx512f: flags.has('avx512f'),
      avx512bw: flags.has('avx512bw'),
      avx512vl: flags.has('avx512vl'),
      avx512vnni: flags.has('avx512_vnni'),
      avx512bf16: flags.has('avx512_bf16'),
      avxvnni: flags.has('avx_vnni'),
      // Linux lists amx_* only when it enables the tile state; the permission request then succeeds.
      amxBf16: flags.has('amx_bf16') && flags.has('amx_tile') && flags.has('avx512_bf16'),
    });
  });

  it('TESSERA_NATIVE_DISABLE=amx hides the tiles and nothing else', () => {
    const script = `import { nativeCpuFeatures } from '@tessera/kernels-native'; console.log(JSON.stringify(nativeCpuFeatures()));`;
    const run = (env: Record<string, string>) => jsonFromChild(script, env);
    const hidden = run({ TESSERA_NATIVE_DISABLE: 'amx' });
    expect(hidden).toEqual({ ...nativeCpuFeatures(), amxBf16: false });
    expect(run({ TESSERA_NATIVE_DISABLE: 'avx512bf16' }).amxBf16).toBe(false);
  });

  it('TESSERA_NATIVE_DISABLE=avx512f hides every AVX-512 set; attention and large matmuls then run on sgemm, same values', () => {
    // Packed causal attention and its gradient over three query blocks, and a linear large
    // enough for our own GEMM (with its bias), from fixed inputs.
    const script = `
      import { nativeCpuFeatures } from '@tessera/kernels-native';
      import { packedAttentionGradOp, packedAttentionOp, tf, useBackend } from '@tessera/tensor-core';
      await useBackend('native', { log: () => {} });
      const [B, T, H, D] = [2, 150, 2, 24];
      const wave = (n, f) => tf.tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i * f)));
      const qkv = wave(B * T * 3 * H * D, 0.37).reshape([B, T, 3 * H * D]);
      const dy = wave(B * T * H * D, 0.11).reshape([B, T, H * D]);
      const attrs = { nHead: H, causal: true, scale: null };
      const y = packedAttentionOp({ qkv }, attrs)[0];
      const [dqkv] = packedAttentionGradOp({ dy, qkv }, attrs);
      const x = wave(200 * 300, 0.23).reshape([200, 300]), w = wave(300 * 130, 0.07).reshape([300, 130]);
      const linear = tf.add(tf.matMul(x, w), wave(130, 0.5));
      console.log(JSON.stringify({ features: nativeCpuFeatures(), y: Array.from(y.dataSync()), dqkv: Array.from(dqkv.dataSync()), linear: Array.from(linear.dataSync()) }));`;
    const run = (env: Record<string, string>) =>
      jsonFromChild(script, env) as {
        features: Record<string, boolean>;
        y: number[];
        dqkv: number[];
        linear: number[];
      };
    const base = run({});
    const hidden = run({ TESSERA_NATIVE_DISABLE: 'avx512f' });
    for (const name of ['avx512f', 'avx512bw', 'avx512vl', 'avx512vnni', 'avx512bf16', 'amxBf16']) {
      expect(hidden.features[name], name).toBe(false);
    }
    expect(hidden.features.avx2).toBe(base.features.avx2);
    // Both paths sum each product in k order in fp32 (FMA); only sgemm's blocking may differ.
    for (const key of ['y', 'dqkv', 'linear'] as const) {
      const scale = Math.max(...base[key].map(Math.abs));
      const worst = Math.max(...base[key].map((v, i) => Math.abs(v - hidden[key][i]!)));
      expect(worst, key).toBeLessThanOrEqual(1e-5 * scale);
    }
  });

  it('the build records its compiler flags', () => {
    const info = JSON.parse(readFileSync(new URL('../dist/native/build-info.json', import.meta.url), 'utf8'));
    expect(info.flags.length).toBeGreaterThan(0);
    // The same g++ that built the addon says which instruction sets those flags assume;
    // every one of them must be on this CPU, or Init would have refused to load.
    const macros = execFileSync('g++', [...info.flags, '-dM', '-E', '-x', 'c++', '/dev/null'], { encoding: 'utf8' });
    const f = nativeCpuFeatures();
    if (/__AVX512F__/.test(macros)) expect(f.avx512f).toBe(true);
    if (/__AVX2__/.test(macros)) expect(f.avx2).toBe(true);
  });
});
