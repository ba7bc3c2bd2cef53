// One rank of a data-parallel test run: `mpirun -np N node rank-train.mjs RUN.json`.
// RUN.json holds { config, dir, resume? }; rank 0 writes RUN.json's dir/result.json.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import '@tessera/kernels-cpu';
import '@tessera/transformer';
import '@tessera/optim';
import '@tessera/data';
import { readFileSync } from 'node:fs';
import { GradientSyncCallback, ProcessGroup } from '@tessera/distributed';
import { runConfigFrom, Trainer } from '@tessera/trainers';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const group = ProcessGroup.join({ timeoutSeconds: 60 });
const sync = new GradientSyncCallback(group, job.sync ?? {});
const trainer = await Trainer.create(runConfigFrom(job.config, job.dir), {
  tty: false,
  log: () => {},
  handleSigint: false,
  world: { rank: group.rank, size: group.size },
  callbacks: [sync],
  ...(job.resume ? { resume: job.resume } : {}),
});
const result = await trainer.train();
trainer.dispose();
if (group.isMain)
  writeFileSync(
    join(job.dir, job.result ?? 'result.json'),
    JSON.stringify({ losses: result.losses, steps: result.steps, timings: sync.timings }),
  );
await group.finalize();
