// Trains from a token-shard corpus in its own process and reports the RSS growth it caused:
// node rss-child.mjs '<config json>' <base dir>
import '@tessera/kernels-cpu';
import '@tessera/transformer';
import '@tessera/optim';
import { TokenShards } from '@tessera/data';
import { runConfigFrom, Trainer } from '@tessera/trainers';

const [json, base] = process.argv.slice(2);
const config = runConfigFrom(JSON.parse(json), base);
// Which shards the run reads: wrap the reader once, count the files touched.
const seen = new Set();
const read = TokenShards.prototype.read;
TokenShards.prototype.read = function (start, count) {
  let at = 0;
  for (const s of this.index.shards) {
    if (start < at + s.tokens && start + count > at) seen.add(s.file);
    at += s.tokens;
  }
  return read.call(this, start, count);
};
globalThis.gc?.();
const before = process.memoryUsage().rss;
let peak = before;
const timer = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage().rss);
}, 20);
const trainer = await Trainer.create(config, { tty: false, log: () => {}, handleSigint: false });
const created = process.memoryUsage().rss;
const result = await trainer.train();
peak = Math.max(peak, process.memoryUsage().rss);
clearInterval(timer);
trainer.dispose();
const mb = (x) => Math.round((x / 2 ** 20) * 10) / 10;
console.log(
  `RESULT ${JSON.stringify({ steps: result.steps, rssBeforeMb: mb(before), rssCreatedMb: mb(created), rssPeakMb: mb(peak), rssGrowthMb: mb(peak - before), trainingGrowthMb: mb(peak - created), shardsSeen: seen.size })}`,
);
