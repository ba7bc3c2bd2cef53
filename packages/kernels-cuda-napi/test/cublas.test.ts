// cuBLASLt discovery: the search order (TS, any machine) and the dlopen + version check (the
// addon's own C++ in native/cublas_loader.cc, run through the host test binary against fake
// libraries built here with g++).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cublasNotFoundMessage, cublasSearchDirs, type SearchEnv } from '../src/cublas_search.js';
import { hosttest } from './helpers.js';

/** A pretend machine: directories that exist and what they list. */
function fakeMachine(env: Record<string, string>, tree: Record<string, string[]>): SearchEnv {
  const exists = (p: string) => Object.keys(tree).some((d) => d === p || d.startsWith(`${p}/`));
  return { env, home: '/home/u', list: (dir) => tree[dir] ?? [], exists };
}

describe('cuBLASLt search order', () => {
  const machine = fakeMachine(
    {
      TESSERA_CUBLAS_PATH: '/opt/mine:/opt/also',
      CUDA_HOME: '/opt/cuda',
      VIRTUAL_ENV: '/work/venv',
    },
    {
      '/usr/local': ['cuda', 'cuda-12.4', 'cuda-13.0', 'lib', 'bin'],
      '/usr/local/cuda/lib64': [],
      '/usr/local/cuda-13.0/lib64': [],
      '/usr/local/cuda-12.4/lib64': [],
      '/work/venv/lib': ['python3.12'],
      '/work/venv/lib/python3.12/site-packages/nvidia/cu13/lib': [],
      '/home/u/.local/lib': ['python3.11'],
      '/home/u/.local/lib/python3.11/site-packages/nvidia/cublas/lib': [],
      '/usr/local/lib': ['python3.10', 'python3.12', 'node_modules'],
      '/usr/local/lib/python3.12/dist-packages/nvidia/cu13/lib': [],
      '/usr/local/lib/python3.12/dist-packages/nvidia/cublas/lib': [],
      '/usr/local/lib/python3.10/dist-packages/torch': [],
    },
  );

  it('searches the override, the loader path, CUDA_HOME, the toolkits, then pip wheels, newest python first', () => {
    expect(cublasSearchDirs(13, machine).map((d) => d.dir)).toEqual([
      '/opt/mine',
      '/opt/also',
      '',
      '/opt/cuda/lib64',
      '/usr/local/cuda/lib64',
      '/usr/local/cuda-13.0/lib64',
      '/usr/local/cuda-12.4/lib64',
      '/work/venv/lib/python3.12/site-packages/nvidia/cu13/lib',
      '/home/u/.local/lib/python3.11/site-packages/nvidia/cublas/lib',
      '/usr/local/lib/python3.12/dist-packages/nvidia/cu13/lib',
      '/usr/local/lib/python3.12/dist-packages/nvidia/cublas/lib',
    ]);
  });

  it('says why each place is on the list, and lists CUDA_HOME even when it is absent (the error names it)', () => {
    const dirs = cublasSearchDirs(13, machine);
    expect(dirs[0]!.why).toBe('TESSERA_CUBLAS_PATH');
    expect(dirs[2]!.why).toMatch(/dynamic loader/);
    expect(dirs.find((d) => d.dir === '/opt/cuda/lib64')!.why).toBe('$CUDA_HOME/lib64');
    expect(dirs.find((d) => d.dir.includes('cu13'))!.why).toBe("pip's CUDA 13 wheels");
  });

  it('with nothing set, looks only where things are', () => {
    const bare = fakeMachine({}, { '/usr/lib': ['python3'], '/usr/lib/python3/dist-packages/nvidia/cu13/lib': [] });
    expect(cublasSearchDirs(13, bare).map((d) => d.dir)).toEqual([
      '',
      '/usr/lib/python3/dist-packages/nvidia/cu13/lib',
    ]);
  });

  it('names every place searched, why each failed, and what to do', () => {
    const dirs = [
      { dir: '/opt/mine', why: 'TESSERA_CUBLAS_PATH' },
      { dir: '', why: 'the dynamic loader path (LD_LIBRARY_PATH, ld.so.cache)' },
      { dir: '/opt/cuda/lib64', why: '$CUDA_HOME/lib64' },
    ];
    const msg = cublasNotFoundMessage(13, dirs, [
      { dir: '/opt/mine', file: '/opt/mine/libcublasLt.so.13', error: 'cannot open shared object file' },
      { dir: '', file: 'libcublasLt.so.13', error: 'libcublasLt.so.13: cannot open shared object file' },
      { dir: '/opt/cuda/lib64', file: '/opt/cuda/lib64/libcublasLt.so.13', error: 'major 12' },
    ]);
    expect(msg).toMatch(/^cuda unavailable: cuBLAS not found: libcublasLt\.so\.13 \(CUDA 13\)/);
    expect(msg).toContain('/opt/mine/libcublasLt.so.13 (TESSERA_CUBLAS_PATH): cannot open shared object file');
    expect(msg).toContain('libcublasLt.so.13 via the dynamic loader path');
    expect(msg).toContain('/opt/cuda/lib64/libcublasLt.so.13 ($CUDA_HOME/lib64): major 12');
    expect(msg).toMatch(/TESSERA_CUBLAS_PATH at the directory/);
    expect(msg).toMatch(/pip install nvidia-cublas/);
  });
});

// Fake cuBLASLt builds: the loader only dlopens and dlsyms, so stubs are enough.
const SYMBOLS = [
  'cublasLtCreate',
  'cublasLtDestroy',
  'cublasLtMatmulDescCreate',
  'cublasLtMatmulDescDestroy',
  'cublasLtMatmulDescSetAttribute',
  'cublasLtMatrixLayoutCreate',
  'cublasLtMatrixLayoutDestroy',
  'cublasLtMatrixLayoutSetAttribute',
  'cublasLtMatmulPreferenceCreate',
  'cublasLtMatmulPreferenceDestroy',
  'cublasLtMatmulPreferenceSetAttribute',
  'cublasLtMatmulAlgoGetHeuristic',
  'cublasLtMatmul',
];

interface DlopenResult {
  ok: boolean;
  path: string;
  blasPath: string;
  version: number;
  attempts: { dir: string; file: string; error: string }[];
}

describe('cuBLASLt dlopen and version check (native/cublas_loader.cc)', () => {
  let root: string;
  const dir = (name: string) => join(root, name);

  function fakeLib(where: string, file: string, version: number | null, symbols: string[]) {
    mkdirSync(where, { recursive: true });
    const src = join(where, `${file}.cc`);
    const body = [
      '#include <cstddef>',
      ...(version === null ? [] : [`extern "C" size_t cublasLtGetVersion() { return ${version}; }`]),
      ...symbols.map((s) => `extern "C" int ${s}() { return 0; }`),
    ].join('\n');
    writeFileSync(src, body);
    const r = spawnSync('g++', ['-shared', '-fPIC', src, '-o', join(where, file)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`g++ failed on a fake cuBLASLt: ${r.stderr}`);
  }

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'tessera-cublas-'));
    fakeLib(dir('old'), 'libcublasLt.so.13', 120500, SYMBOLS); // the right file name, the wrong major
    fakeLib(dir('partial'), 'libcublasLt.so.13', 130100, ['cublasLtCreate']);
    fakeLib(dir('good'), 'libcublasLt.so.13', 130200, SYMBOLS);
    fakeLib(dir('good'), 'libcublas.so.13', null, []);
    fakeLib(dir('also-good'), 'libcublasLt.so.13', 130300, SYMBOLS);
    fakeLib(dir('unversioned'), 'libcublasLt.so', 130200, SYMBOLS); // only the dev symlink name
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const load = (dirs: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = spawnSync(hosttest, ['dlopen', '13', ...dirs], { encoding: 'utf8', env: { ...process.env, ...env } });
    if (r.status !== 0) throw new Error(`hosttest dlopen failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as DlopenResult;
  };

  it('takes the first directory whose library has the right major and every symbol, trying them in order', () => {
    const r = load([dir('missing'), dir('unversioned'), dir('old'), dir('partial'), dir('good'), dir('also-good')]);
    expect(r.ok).toBe(true);
    expect(r.path).toBe(join(dir('good'), 'libcublasLt.so.13'));
    expect(r.version).toBe(130200);
    expect(r.attempts.map((a) => a.dir)).toEqual([
      dir('missing'),
      dir('unversioned'),
      dir('old'),
      dir('partial'),
      dir('good'),
    ]);
    const [missing, unversioned, old, partial, good] = r.attempts;
    expect(missing!.error).toMatch(/cannot open shared object file/);
    // Versioned sonames only: a bare libcublasLt.so is never opened.
    expect(unversioned!.error).toMatch(/cannot open shared object file/);
    expect(old!.error).toBe('cublasLtGetVersion() is 120500 (major 12), this addon was built for CUDA 13');
    expect(partial!.error).toMatch(/lacks cublasLtDestroy, .*cublasLtMatmul \(not a cuBLASLt library\?\)/);
    expect(good!.error).toBe('');
  });

  it('loads libcublas.so.13 from the same directory after libcublasLt.so.13', () => {
    expect(load([dir('good')]).blasPath).toBe(join(dir('good'), 'libcublas.so.13'));
    expect(load([dir('also-good')]).blasPath).toBe(''); // optional: the GEMMs need only Lt
  });

  it('finds it through the loader path ("") when LD_LIBRARY_PATH has it', () => {
    const r = load([''], { LD_LIBRARY_PATH: dir('also-good') });
    expect(r.ok).toBe(true);
    expect(r.version).toBe(130300);
    expect(r.attempts[0]!.file).toBe('libcublasLt.so.13');
  });

  it('fails with one reason per place when none has it', () => {
    const r = load([dir('old'), dir('missing')]);
    expect(r.ok).toBe(false);
    expect(r.attempts).toHaveLength(2);
    expect(r.attempts.every((a) => a.error.length > 0)).toBe(true);
  });
});
