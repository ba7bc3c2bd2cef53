import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { GradientSyncCallback, launchedWorld, mpirunCommand, ProcessGroup } from '@tessera/distributed';
import { TesseraError } from '@tessera/tensor-core';
import type { TrainerOptions } from '@tessera/trainers';

const osSignals = constants.signals as Record<string, number>;

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

/**
 * `tessera launch -n N -- train cfg.yaml`: the same command on N ranks through mpirun.
 * mpirun runs in its own process group, so a terminal's Ctrl-C reaches only this wrapper,
 * which asks for a graceful stop with SIGUSR2 (mpirun forwards it to every rank; it would
 * turn SIGINT into a job kill). A second Ctrl-C terminates the job.
 */
export async function launchCommand(command: string[], o: LaunchOptions): Promise<number> {
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
  const child = spawn(file, args, { stdio: 'inherit', env: { ...process.env, ...env }, detached: true });
  let interrupts = 0;
  const onInterrupt = () => {
    if (interrupts++ === 0) {
      console.error('tessera launch: finishing the step on every rank and saving (Ctrl-C again to abort the job)');
      child.kill('SIGUSR2');
    } else child.kill('SIGTERM');
  };
  process.on('SIGINT', onInterrupt);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.on('error', (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'ENOENT'
            ? new TesseraError(
                'mpirun was not found: install the Debian package openmpi-bin (or an MPI of your choice).',
              )
            : err,
        ),
      );
      child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + (osSignals[signal] ?? 0) : 1)));
    });
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}
