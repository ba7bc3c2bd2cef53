// Trains the plugin's model from one config naming all four plugins; prints RESULT <json>.
// node run.mjs <output dir> <max_steps> [resume dir]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runConfigFrom, Trainer } from '@tessera/trainers';
import { loadPretrained } from '@tessera/transformer';

const [out, maxSteps, resume] = process.argv.slice(2);
const config = runConfigFrom(
  {
    backend: 'cpu',
    seed: 3,
    plugins: ['tessera-plugin-demo'],
    tokenizer: { name: 'lower-wordpiece', vocab_size: 90 },
    data: { train: { path: 'corpus.txt' }, validation_fraction: 0.2, block_size: 8 },
    objective: { name: 'demo-windows' },
    model: { name: 'bigram', init_std: 0.1 },
    optimizer: { name: 'adamw', lr: 0.05 },
    metrics: ['loss', 'accuracy'],
    callbacks: [{ name: 'event-log', file: join(out, 'events.jsonl') }],
    training: {
      output_dir: out,
      max_steps: Number(maxSteps),
      per_device_train_batch_size: 4,
      eval_steps: 2,
      save_steps: 2,
      sample_prompt: 'The keeper',
      sample_tokens: 3,
    },
  },
  process.cwd(),
);
const trainer = await Trainer.create(config, { tty: false, log: () => {}, ...(resume ? { resume } : {}) });
const result = await trainer.train();
// Loaded back through the registry from the checkpoint alone.
const { model } = loadPretrained(result.lastCheckpoint);
const trained = await trainer.model.table.value.data();
const same = (await model.table.value.data()).every((x, i) => x === trained[i]);
const events = readFileSync(join(out, 'events.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l));
console.log(
  `RESULT ${JSON.stringify({ losses: result.losses, steps: result.steps, sample: result.sample, lastCheckpoint: result.lastCheckpoint, architecture: model.architecture, loadedEqualsTrained: same, evalMetrics: result.evalMetrics, events })}`,
);
model.dispose();
trainer.dispose();
