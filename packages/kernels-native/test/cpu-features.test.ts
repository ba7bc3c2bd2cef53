import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nativeCpuFeatures } from '@tessera/kernels-native';

// The run-time detection must agree with what the kernel reports, so a kernel that
// dispatches on these flags never takes a path the CPU cannot execute.
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
    const run = (env: Record<string, string>) =>
      JSON.parse(
        execFileSync(process.execPath, ['--input-type=module', '-e', script], {
          cwd: new URL('..', import.meta.url),
          env: { ...process.env, ...env },
          encoding: 'utf8',
        })
          .trim()
          .split('\n')
          .pop()!,
      );
    const hidden = run({ TESSERA_NATIVE_DISABLE: 'amx' });
    expect(hidden).toEqual({ ...nativeCpuFeatures(), amxBf16: false });
    expect(run({ TESSERA_NATIVE_DISABLE: 'avx512bf16' }).amxBf16).toBe(false);
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
