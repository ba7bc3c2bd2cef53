import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { LoadAttempt } from './addon.js';

/** One place the cuBLASLt search looks, and why it is on the list. */
export interface SearchDir {
  /** "" means the dynamic loader's own search (LD_LIBRARY_PATH, ld.so.cache, the rpath). */
  dir: string;
  why: string;
}

/** What the search reads from the machine; tests pass their own. */
export interface SearchEnv {
  env: Record<string, string | undefined>;
  home: string;
  /** Directory names in `dir`, [] when it does not exist. */
  list(dir: string): string[];
  exists(path: string): boolean;
}

export const realSearchEnv = (): SearchEnv => ({
  env: process.env,
  home: homedir(),
  list: (dir) => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  },
  exists: existsSync,
});

/** Python site directories findable without running python: system, user, and the active virtualenv/conda env. */
export function pythonSiteDirs(s: SearchEnv): string[] {
  const pythons = (root: string) =>
    s
      .list(root)
      .filter((d) => /^python3(\.\d+)?$/.test(d))
      // Newest first: python3.12 before python3.10 (numeric compare on the minor version).
      .sort((a, b) => Number(b.split('.')[1] ?? 0) - Number(a.split('.')[1] ?? 0));
  const dirs: string[] = [];
  for (const prefix of [s.env.VIRTUAL_ENV, s.env.CONDA_PREFIX].filter((p): p is string => !!p)) {
    for (const py of pythons(join(prefix, 'lib'))) dirs.push(join(prefix, 'lib', py, 'site-packages'));
  }
  for (const py of pythons(join(s.home, '.local', 'lib')))
    dirs.push(join(s.home, '.local', 'lib', py, 'site-packages'));
  for (const root of ['/usr/local/lib', '/usr/local/lib64', '/usr/lib', '/usr/lib64', '/opt/conda/lib']) {
    for (const py of pythons(root)) {
      for (const sub of ['dist-packages', 'site-packages']) dirs.push(join(root, py, sub));
    }
  }
  return dirs;
}

/**
 * Where cuBLASLt is searched, in order: TESSERA_CUBLAS_PATH (directories, ':'-separated),
 * the dynamic loader's own path, $CUDA_HOME/lib64 (and the /usr/local/cuda toolkits), then
 * pip's NVIDIA wheels in every python site directory found: site-packages/nvidia/cu<major>/lib
 * (CUDA 13 wheels put every library there, PyTorch 2.9+ included) and
 * site-packages/nvidia/cublas/lib (the nvidia-cublas-cu12 layout). An explicit override
 * comes first so it always wins.
 * Directories that do not exist are still listed (the error names every place searched)
 * except the pip and toolkit guesses, which only appear when they exist.
 */
export function cublasSearchDirs(major: number, s: SearchEnv = realSearchEnv()): SearchDir[] {
  const out: SearchDir[] = [];
  const seen = new Set<string>();
  const add = (dir: string, why: string) => {
    if (seen.has(dir)) return;
    seen.add(dir);
    out.push({ dir, why });
  };
  for (const d of (s.env.TESSERA_CUBLAS_PATH ?? '').split(delimiter).filter(Boolean)) add(d, 'TESSERA_CUBLAS_PATH');
  add('', 'the dynamic loader path (LD_LIBRARY_PATH, ld.so.cache)');
  for (const v of ['CUDA_HOME', 'CUDA_PATH'] as const) {
    const home = s.env[v];
    if (home) add(join(home, 'lib64'), `$${v}/lib64`);
  }
  const toolkits = s
    .list('/usr/local')
    .filter((d) => /^cuda(-[\d.]+)?$/.test(d))
    .sort((a, b) => (a === 'cuda' ? -1 : b === 'cuda' ? 1 : b.localeCompare(a, undefined, { numeric: true })));
  for (const t of toolkits) {
    const dir = join('/usr/local', t, 'lib64');
    if (s.exists(dir)) add(dir, 'a CUDA toolkit in /usr/local');
  }
  for (const site of pythonSiteDirs(s)) {
    for (const [sub, why] of [
      [join('nvidia', `cu${major}`, 'lib'), `pip's CUDA ${major} wheels`],
      [join('nvidia', 'cublas', 'lib'), "pip's nvidia-cublas wheel"],
    ] as const) {
      const dir = join(site, sub);
      if (s.exists(dir)) add(dir, why);
    }
  }
  return out;
}

/** The error for "cuBLASLt not found": the soname, every place searched and why each failed, what to do. */
export function cublasNotFoundMessage(major: number, dirs: SearchDir[], attempts: LoadAttempt[]): string {
  const byDir = new Map(attempts.map((a) => [a.dir, a]));
  const lines = dirs.map((d) => {
    const a = byDir.get(d.dir);
    const where =
      d.dir === '' ? `libcublasLt.so.${major} via ${d.why}` : `${join(d.dir, `libcublasLt.so.${major}`)} (${d.why})`;
    return `  ${where}: ${a ? a.error || 'loaded' : 'not tried'}`;
  });
  return (
    `cuda unavailable: cuBLAS not found: libcublasLt.so.${major} (CUDA ${major}) is in none of the places searched:\n` +
    `${lines.join('\n')}\n` +
    `Install it (pip install nvidia-cublas, which PyTorch's CUDA ${major} wheels bring, or the CUDA toolkit's libcublas-${major}-0 package) or point ` +
    'TESSERA_CUBLAS_PATH at the directory that holds it.'
  );
}
