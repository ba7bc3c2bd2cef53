import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// A binary built with -march=native on one machine must never die by SIGILL on another: the
// addon checks at load that the CPU has every instruction set the build assumed and refuses
// to load otherwise. Proven here by building a copy for an instruction set this CPU lacks.
const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '').split(/\s+/));
const candidates: [cpuinfoFlag: string, gccFlag: string, name: string][] = [
  ['avx512_fp16', '-mavx512fp16', 'avx512fp16'],
  ['avx512_bf16', '-mavx512bf16', 'avx512bf16'],
  ['avx512_vnni', '-mavx512vnni', 'avx512vnni'],
  ['avx512f', '-mavx512f', 'avx512f'],
  ['avx2', '-mavx2', 'avx2'],
  // Last: few CPUs have it (Tiger Lake, Zen 5), so a machine with every set above still runs this test.
  ['avx512_vp2intersect', '-mavx512vp2intersect', 'avx512vp2intersect'],
];
const missing = flags.size > 1 ? candidates.find(([f]) => !flags.has(f)) : undefined;

describe('instruction-set guard', () => {
  it.runIf(missing !== undefined)(
    `an addon built for ${missing?.[2] ?? '(nothing this CPU lacks)'} refuses to load here, naming it and the rebuild`,
    () => {
      const [, gccFlag, name] = missing!;
      const out = mkdtempSync(join(tmpdir(), 'tessera-isa-'));
      try {
        const r = spawnSync(process.execPath, ['scripts/build-native.mjs'], {
          cwd: join(import.meta.dirname, '..'),
          env: { ...process.env, TESSERA_NATIVE_OUT_DIR: out, TESSERA_NATIVE_CXXFLAGS: `-O0 ${gccFlag}` },
          encoding: 'utf8',
        });
        // The build step loads what it built: the guard answers there, as a clear failure.
        expect(r.signal).toBeNull();
        const error = readFileSync(join(out, 'build-error.txt'), 'utf8');
        // Every set the flag implies that this CPU lacks, the one asked for among them.
        expect(error).toMatch(
          new RegExp(`compiled for a CPU with ([a-z0-9]+, )*${name}(, [a-z0-9]+)*, which this CPU lacks`),
        );
        expect(error).toContain('rebuild it here');
        expect(existsSync(join(out, 'tessera_native.node'))).toBe(false);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    },
    120_000,
  );

  // The AVX-512 kernels are compiled per function (target attributes) and chosen at run
  // time, so a build on a CPU with AVX2 alone must still compile them: an intrinsic outside
  // its function's target (a 256-bit masked move needs AVX-512VL, not just F) fails there
  // with "target specific option mismatch", which a build on this CPU never shows.
  it.runIf(flags.has('avx2') && flags.has('fma'))(
    'the addon builds and loads as built for an AVX2-only CPU (-march=x86-64-v3)',
    () => {
      const out = mkdtempSync(join(tmpdir(), 'tessera-v3-'));
      try {
        const r = spawnSync(process.execPath, ['scripts/build-native.mjs'], {
          cwd: join(import.meta.dirname, '..'),
          env: {
            ...process.env,
            TESSERA_NATIVE_OUT_DIR: out,
            TESSERA_NATIVE_CXXFLAGS: '-O1 -march=x86-64-v3',
            TESSERA_NATIVE_REQUIRED: '1',
          },
          encoding: 'utf8',
        });
        expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
        expect(existsSync(join(out, 'tessera_native.node'))).toBe(true);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    },
    180_000,
  );
});
