// Runs one training job in its own process (for the kill / SIGINT tests):
// node child.mjs '<config json>' <base dir> [resume]
import '@tessera/kernels-cpu';
import '@tessera/transformer';
import '@tessera/optim';
import '@tessera/data';
import { Trainer, runConfigFrom } from '@tessera/trainers';

const [json, base, resume] = process.argv.slice(2);
const trainer = await Trainer.create(runConfigFrom(JSON.parse(json), base), {
  tty: false,
  ...(resume ? { resume } : {}),
});
const result = await trainer.train();
console.log(
  `RESULT ${JSON.stringify({ steps: result.steps, losses: result.losses, interrupted: result.interrupted, lastCheckpoint: result.lastCheckpoint })}`,
);
