import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { GradientSyncCallback, launchedWorld, mpirunCommand, ProcessGroup } from '@tessera/distributed';
import { TesseraError } from '@tessera/tensor-core';
import type { TrainerOptions } from '@tessera/trainers';

/**
 * Under mpirun (or mpiexec / srun) with more than one rank: joins the MPI job and returns
 * the trainer options that make the run data-parallel, and what to call when it ends.
 * Started alone: nothing changes.
 */
export function dataParallelOptions(): { options: Partial<TrainerOptions>; close: () => Promise<void> } {
  const launched = launchedWorld();
  if (!launched || launched.size < 2) return { options: {}, close: async () => {} };
  const group = ProcessGroup.join();
  const prefix = `[rank ${group.rank}/${group.size}]`;
  const options: Partial<TrainerOptions> = {
    world: { rank: group.rank, size: group.size },
    callbacks: [new GradientSyncCallback(group)],
    // mpirun hands ranks a pseudo-terminal; a progress bar redrawn through it garbles the job's output.
    tty: false,
    // Rank 0 speaks for the job; the other ranks print only what concerns them alone.
    log: group.isMain
      ? (line) => console.log(line)
      : (line) => /^(step \d+:|resumed)/.test(line) && console.log(`${prefix} ${line}`),
  };
  if (group.isMain)
    console.log(`distributed: ${group.size} ranks on ${group.library.split(',')[0]} (rank 0 on ${group.host})`);
  return { options, close: () => group.finalize() };
}

export interface LaunchOptions {
  ranks: number;
  hostfile?: string;
  threadsPerRank?: number;
  iface?: string;
  /** Print the mpirun command instead of running it. */
  dryRun?: boolean;
}

/** `tessera launch -n N -- train cfg.yaml`: the same command on N ranks through mpirun. */
export function launchCommand(command: string[], o: LaunchOptions): number {
  if (!command.length) throw new TesseraError('tessera launch needs a command: tessera launch -n 2 -- train CONFIG');
  if (!Number.isInteger(o.ranks) || o.ranks < 1)
    throw new TesseraError(`-n must be a positive integer; got ${o.ranks}.`);
  const bin = fileURLToPath(new URL('./bin.js', import.meta.url));
  const { file, args, env } = mpirunCommand([process.execPath, bin, ...command], {
    ranks: o.ranks,
    ...(o.hostfile ? { hostfile: o.hostfile } : {}),
    ...(o.threadsPerRank ? { threadsPerRank: o.threadsPerRank } : {}),
    ...(o.iface ? { networkInterface: o.iface } : {}),
  });
  const shown = [...Object.entries(env).map(([k, v]) => `${k}=${v}`), file, ...args].join(' ');
  if (o.dryRun) {
    console.log(shown);
    return 0;
  }
  console.error(`tessera launch: ${shown}`);
  const r = spawnSync(file, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT')
    throw new TesseraError('mpirun was not found: install the Debian package openmpi-bin (or an MPI of your choice).');
  return r.status ?? 1;
}
