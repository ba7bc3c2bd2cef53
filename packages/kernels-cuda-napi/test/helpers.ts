import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const pkgDir = join(import.meta.dirname, '..');
export const nativeOut = join(pkgDir, 'dist', 'native');
export const hosttest = join(nativeOut, 'hosttest');

/** Whether this machine has nvcc where the build looks (CUDA_HOME, /usr/local/cuda*, PATH). */
export function hasNvcc(): boolean {
  // The build's own override: "none" builds as a machine without nvcc would (CI can test that path).
  if (process.env.TESSERA_CUDA_NVCC === 'none') return false;
  if (process.env.TESSERA_CUDA_NVCC) return existsSync(process.env.TESSERA_CUDA_NVCC);
  const dirs = [process.env.CUDA_HOME && join(process.env.CUDA_HOME, 'bin'), '/usr/local/cuda/bin'];
  if (dirs.some((d) => d && existsSync(join(d, 'nvcc')))) return true;
  if (
    existsSync('/usr/local') &&
    spawnSync('sh', ['-c', 'ls -d /usr/local/cuda-*/bin/nvcc'], { stdio: 'ignore' }).status === 0
  )
    return true;
  return spawnSync('sh', ['-c', 'command -v nvcc'], { stdio: 'ignore' }).status === 0;
}

export interface AllocStep {
  op: string;
  name?: string;
  ok?: boolean;
  address?: number;
  size?: number;
  error?: string;
  [stat: string]: unknown;
}

/** Runs allocator commands (one per line) in the host test binary; one parsed JSON object per command. */
export function runAllocator(script: string): AllocStep[] {
  const r = spawnSync(hosttest, ['alloc'], { input: script, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`hosttest alloc failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as AllocStep);
}

export const MiB = 2 ** 20;
