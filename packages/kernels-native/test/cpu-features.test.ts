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

  it('TESSERA_NATIVE_DISABLE=avx512f hides every AVX-512 set, and avx2 the AVX2 kernels; every path gives the same values', () => {
    // Packed causal attention and its gradient over three query blocks, and products large
    // enough for our own GEMM, from fixed inputs: a linear with its bias and its gradient
    // (TesseraLinearGrad: db summed while dy is packed), Aᵀ and Bᵀ, rows not a multiple of the
    // 6-row tile, columns not of either panel width (16 or 64), K over two K blocks.
    const script = `
      import { nativeCpuFeatures, nativeOwnGemm } from '@tessera/kernels-native';
      import { linearOp, packedAttentionGradOp, packedAttentionOp, tf, useBackend } from '@tessera/tensor-core';
      await useBackend('native', { log: () => {} });
      const [B, T, H, D] = [2, 150, 2, 24];
      const wave = (n, f) => tf.tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i * f)));
      const qkv = wave(B * T * 3 * H * D, 0.37).reshape([B, T, 3 * H * D]);
      const dy = wave(B * T * H * D, 0.11).reshape([B, T, H * D]);
      const attrs = { nHead: H, causal: true, scale: null };
      const y = packedAttentionOp({ qkv }, attrs)[0];
      const [dqkv] = packedAttentionGradOp({ dy, qkv }, attrs);
      const x = wave(200 * 300, 0.23).reshape([200, 300]), w = wave(300 * 130, 0.07).reshape([300, 130]);
      const bias = wave(130, 0.5), dOut = wave(200 * 130, 0.19).reshape([200, 130]);
      const f = (x, w, b) => tf.sum(tf.mul(linearOp({ x, weight: w, bias: b }, { transposeWeight: false })[0], dOut));
      const [dx, dw, db] = tf.grads(f)([x, w, bias]);
      const at = tf.matMul(wave(701 * 151, 0.3).reshape([701, 151]), wave(701 * 97, 0.13).reshape([701, 97]), true, false);
      const bt = tf.matMul(wave(143 * 700, 0.29).reshape([143, 700]), wave(70 * 700, 0.41).reshape([70, 700]), false, true);
      const values = (t) => Array.from(t.dataSync());
      console.log(JSON.stringify({ features: nativeCpuFeatures(), ownGemm: nativeOwnGemm(), y: values(y), dqkv: values(dqkv),
        linear: values(linearOp({ x, weight: w, bias }, { transposeWeight: false })[0]), dx: values(dx), dw: values(dw), db: values(db),
        at: values(at), bt: values(bt) }));`;
    type Run = { features: Record<string, boolean>; ownGemm: string } & Record<Key, number[]>;
    type Key = 'y' | 'dqkv' | 'linear' | 'dx' | 'dw' | 'db' | 'at' | 'bt';
    const run = (env: Record<string, string>) => jsonFromChild(script, env) as Run;
    const f = nativeCpuFeatures();
    const avx2Gemm = f.avx2 && f.fma ? 'avx2' : '';
    const base = run({});
    expect(base.ownGemm).toBe(f.avx512f ? 'avx512f' : avx2Gemm);
    const noAvx512 = run({ TESSERA_NATIVE_DISABLE: 'avx512f' });
    for (const name of ['avx512f', 'avx512bw', 'avx512vl', 'avx512vnni', 'avx512bf16', 'amxBf16']) {
      expect(noAvx512.features[name], name).toBe(false);
    }
    expect(noAvx512.features.avx2).toBe(base.features.avx2);
    expect(noAvx512.ownGemm).toBe(avx2Gemm);
    const sgemm = run({ TESSERA_NATIVE_DISABLE: 'avx512f,avx2' });
    expect(sgemm.ownGemm).toBe('');
    // Every path sums each product in k order in fp32 (FMA); only sgemm's blocking may differ.
    for (const other of [noAvx512, sgemm]) {
      for (const key of ['y', 'dqkv', 'linear', 'dx', 'dw', 'db', 'at', 'bt'] as const) {
        const scale = Math.max(...base[key].map(Math.abs));
        const worst = Math.max(...base[key].map((v, i) => Math.abs(v - other[key][i]!)));
        expect(worst, `${key} (own GEMM "${other.ownGemm}")`).toBeLessThanOrEqual(1e-5 * scale);
      }
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
