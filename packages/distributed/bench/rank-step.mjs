// One rank of the scaling bench (or the whole run when started without mpirun):
// `node rank-step.mjs JOB.json`. Trains JOB.config and writes per-update wall times and the
// gradient-sync timings to JOB.result (rank 0).
import { readFileSync, writeFileSync } from 'node:fs';
import '@tessera/kernels-native';
import '@tessera/transformer';
import '@tessera/optim';
import '@tessera/data';
import { GradientSyncCallback, launchedWorld, ProcessGroup } from '@tessera/distributed';
import { runConfigFrom, Trainer } from '@tessera/trainers';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const launched = launchedWorld();
const group = launched && launched.size > 1 ? ProcessGroup.join() : undefined;
const sync = group ? new GradientSyncCallback(group) : undefined;
const stamps = [];
const clock = { name: 'bench-clock', onStepEnd: () => void stamps.push(performance.now()) };
const trainer = await Trainer.create(runConfigFrom(job.config, job.dir), {
  tty: false,
  log: () => {},
  handleSigint: false,
  ...(group ? { world: { rank: group.rank, size: group.size } } : {}),
  callbacks: [...(sync ? [sync] : []), clock],
});
const params = trainer.model.parameterCount();
await trainer.train();
trainer.dispose();
if (!group || group.isMain) {
  const steps = stamps.slice(1).map((t, i) => t - stamps[i]);
  writeFileSync(job.result, JSON.stringify({ steps, params, timings: sync?.timings ?? null }));
}
await group?.finalize();
