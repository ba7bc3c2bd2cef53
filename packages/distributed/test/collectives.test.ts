import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { launchedWorld, mpirunCommand } from '@tessera/distributed';
import { MPI_ENV, mpirunArgs } from './helpers.js';

const CHILD = join(import.meta.dirname, 'collectives-child.mjs');

describe('the MPI binding on 3 ranks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-mpi-'));
  const size = 3;
  let ranks: Array<Record<string, unknown>> = [];

  it('every rank joins and runs every collective', () => {
    const r = spawnSync('mpirun', [...mpirunArgs(size), process.execPath, CHILD, dir], {
      encoding: 'utf8',
      env: MPI_ENV,
      timeout: 120_000,
    });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    ranks = Array.from({ length: size }, (_, i) => JSON.parse(readFileSync(join(dir, `rank-${i}.json`), 'utf8')));
    expect(ranks.map((x) => x.rank)).toEqual([0, 1, 2]);
    expect(ranks.every((x) => x.size === size)).toBe(true);
    // Collectives run off the JS thread: the MPI build must allow calls from another thread.
    expect(['multiple', 'serialized']).toContain(ranks[0]!.threadLevel);
  }, 150_000);

  it('all-reduce: sum, avg, max on float32 / int32 / float64, in place on every rank', () => {
    for (const x of ranks) {
      expect(x.sum).toEqual([3, 4.5, -3]);
      expect(x.avg).toEqual([2, 1]);
      expect(x.max).toEqual([2, 0]);
      expect(x.f64 as number).toBeCloseTo(6e-12, 20);
      expect(x.bigFirst).toBe(6);
      expect(x.bigLast).toBe(6);
      // Queued without awaiting each: they still ran in call order and every one completed.
      expect(x.queued).toEqual([6, 12, 18]);
    }
  });

  it('broadcast from any root, all-gather in rank order, reduce-scatter by block', () => {
    for (const x of ranks) {
      expect(x.bytes).toEqual([1, 2, 3, 4, 5]);
      expect(x.gathered).toEqual([0, 0, 1, 10, 2, 20]);
    }
    // send[i] = i + rank, summed over ranks: 3i + 3; rank r keeps elements 2r, 2r+1.
    expect(ranks.map((x) => x.block)).toEqual([
      [3, 6],
      [9, 12],
      [15, 18],
    ]);
  });

  it('wrong sizes, types, reductions and roots are refused with what was expected', () => {
    const e = ranks[0]!.errors as Record<string, string | null>;
    expect(e.wrongGather).toMatch(/recv must hold worldSize × send.length = 6 elements; it holds 3/);
    expect(e.wrongScatter).toMatch(/send must hold worldSize × recv.length = 6 elements; it holds 3/);
    expect(e.badOp).toMatch(/reduction must be "sum", "avg", "max" or "min"; got "product"/);
    expect(e.badType).toMatch(/must be a Float32Array, Float64Array, Int32Array or Uint8Array/);
    expect(e.badRoot).toMatch(/broadcast root must be a rank in \[0, 3\); got 3/);
    const stats = ranks[0]!.stats as { operations: number; bytes: number; mpiSeconds: number };
    expect(stats.operations).toBeGreaterThanOrEqual(12);
    expect(stats.bytes).toBeGreaterThan(32 * 2 ** 20);
  });
});

describe('launch helpers', () => {
  it('read the world from OpenMPI, MPICH and Slurm environments, and nothing when started alone', () => {
    expect(launchedWorld({})).toBeUndefined();
    expect(
      launchedWorld({
        OMPI_COMM_WORLD_RANK: '3',
        OMPI_COMM_WORLD_SIZE: '8',
        OMPI_COMM_WORLD_LOCAL_RANK: '1',
        OMPI_COMM_WORLD_LOCAL_SIZE: '2',
      }),
    ).toEqual({ rank: 3, size: 8, localRank: 1, localSize: 2, launcher: 'openmpi' });
    expect(launchedWorld({ PMI_RANK: '1', PMI_SIZE: '2' })).toMatchObject({ rank: 1, size: 2, launcher: 'mpich' });
    expect(launchedWorld({ SLURM_PROCID: '0', SLURM_NTASKS: '4' })).toMatchObject({ size: 4, launcher: 'slurm' });
  });

  it('build the mpirun command: root, oversubscription, no binding, threads per rank, forwarded env', () => {
    const asRoot = mpirunCommand(['node', 'bin.js', 'train', 'c.yaml'], { ranks: 4, cores: 2, root: true });
    expect(asRoot.file).toBe('mpirun');
    expect(asRoot.args.slice(0, 4)).toEqual(['-np', '4', '--allow-run-as-root', '--oversubscribe']);
    expect(asRoot.args).toContain('--bind-to');
    expect(asRoot.env.TESSERA_NATIVE_THREADS).toBe('1');
    expect(asRoot.env.OMPI_MCA_btl_vader_single_copy_mechanism).toBe('none');
    expect(asRoot.args.join(' ')).toMatch(
      /-x TESSERA_NATIVE_THREADS -x OMPI_MCA_btl_vader_single_copy_mechanism node bin\.js train c\.yaml$/,
    );
    const hosts = mpirunCommand(['x'], {
      ranks: 16,
      cores: 8,
      root: false,
      hostfile: 'hosts',
      networkInterface: 'eth0',
    });
    expect(hosts.args).not.toContain('--allow-run-as-root');
    expect(hosts.args).not.toContain('--oversubscribe');
    expect(hosts.args).toEqual(expect.arrayContaining(['--hostfile', 'hosts']));
    expect(hosts.env.OMPI_MCA_btl_tcp_if_include).toBe('eth0');
    expect(() => mpirunCommand(['x'], { ranks: 0 })).toThrow(/ranks must be a positive integer/);
  });
});
