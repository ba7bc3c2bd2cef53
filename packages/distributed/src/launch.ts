import { availableParallelism } from 'node:os';

/** Where a launcher (mpirun / mpiexec / srun) put this process, read from the environment it sets. */
export interface LaunchedWorld {
  rank: number;
  size: number;
  localRank: number;
  localSize: number;
  launcher: 'openmpi' | 'mpich' | 'pmix' | 'slurm';
}

const sources: Array<[LaunchedWorld['launcher'], string, string, string, string]> = [
  [
    'openmpi',
    'OMPI_COMM_WORLD_RANK',
    'OMPI_COMM_WORLD_SIZE',
    'OMPI_COMM_WORLD_LOCAL_RANK',
    'OMPI_COMM_WORLD_LOCAL_SIZE',
  ],
  ['mpich', 'PMI_RANK', 'PMI_SIZE', 'MPI_LOCALRANKID', 'MPI_LOCALNRANKS'],
  ['pmix', 'PMIX_RANK', 'PMIX_SIZE', 'PMIX_LOCAL_RANK', 'PMIX_LOCAL_SIZE'],
  ['slurm', 'SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID', 'SLURM_NTASKS_PER_NODE'],
];

/** The launcher's world, or undefined when this process was started alone. */
export function launchedWorld(env: NodeJS.ProcessEnv = process.env): LaunchedWorld | undefined {
  for (const [launcher, rank, size, localRank, localSize] of sources) {
    if (env[rank] === undefined || env[size] === undefined) continue;
    const n = Number(env[size]);
    return {
      rank: Number(env[rank]),
      size: n,
      localRank: Number(env[localRank] ?? env[rank]),
      localSize: Number(env[localSize] ?? n),
      launcher,
    };
  }
  return undefined;
}

export interface MpirunOptions {
  /** Processes to start. */
  ranks: number;
  /** A hostfile for several machines (OpenMPI's --hostfile). */
  hostfile?: string;
  /** Threads each rank's native kernels use (default: the cores of this host shared evenly). */
  threadsPerRank?: number;
  /** Running as root (OpenMPI refuses it unless told). Default: this process's uid is 0. */
  root?: boolean;
  /** Cores of this host (default: what Node reports). */
  cores?: number;
  /** Network interface for MPI's TCP traffic across hosts (e.g. eth0). */
  networkInterface?: string;
  /** Extra mpirun arguments, passed through before the command. */
  extra?: string[];
}

/**
 * The mpirun command line that starts `command` on `ranks` processes, and the environment
 * it needs. OpenMPI's flags: as root --allow-run-as-root; more ranks than cores
 * --oversubscribe; no core binding, so a rank's worker threads are not pinned to one core;
 * and in containers the shared-memory transport's single-copy mechanism (CMA) is usually
 * blocked by ptrace rules, so it is turned off.
 */
export function mpirunCommand(
  command: string[],
  o: MpirunOptions,
): { file: string; args: string[]; env: NodeJS.ProcessEnv } {
  if (!Number.isInteger(o.ranks) || o.ranks < 1)
    throw new RangeError(`ranks must be a positive integer; got ${o.ranks}.`);
  const cores = o.cores ?? availableParallelism();
  const threads = o.threadsPerRank ?? Math.max(1, Math.floor(cores / o.ranks));
  const root = o.root ?? process.getuid?.() === 0;
  const args = ['-np', String(o.ranks)];
  if (root) args.push('--allow-run-as-root');
  if (o.hostfile) args.push('--hostfile', o.hostfile);
  else if (o.ranks > cores) args.push('--oversubscribe');
  args.push('--bind-to', 'none');
  const env: NodeJS.ProcessEnv = {
    TESSERA_NATIVE_THREADS: String(threads),
    OMPI_MCA_btl_vader_single_copy_mechanism: 'none',
  };
  if (o.networkInterface) env.OMPI_MCA_btl_tcp_if_include = o.networkInterface;
  // Forwarded to ranks on other hosts too (local ranks inherit the environment anyway).
  for (const name of Object.keys(env)) args.push('-x', name);
  args.push(...(o.extra ?? []), ...command);
  return { file: 'mpirun', args, env };
}
