// Every collective of the binding on each rank: `mpirun -np N node collectives-child.mjs OUT_DIR`.
// Each rank writes OUT_DIR/rank-<r>.json with what it received and the errors it was given.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProcessGroup } from '@tessera/distributed';

const group = ProcessGroup.join({ timeoutSeconds: 30 });
const { rank, size } = group;
const out = { rank, size, threadLevel: group.threadLevel, library: group.library };

const sum = new Float32Array([rank, rank + 0.5, -rank]);
await group.allReduce(sum, 'sum');
const avg = new Float32Array([rank * 2, 1]);
await group.allReduce(avg, 'avg');
const max = new Int32Array([rank, -rank]);
await group.allReduce(max, 'max');
const f64 = new Float64Array([1e-12 * (rank + 1)]);
await group.allReduce(f64, 'sum');
const bytes = new Uint8Array(5);
if (rank === size - 1) bytes.set([1, 2, 3, 4, 5]);
await group.broadcast(bytes, size - 1);
const gathered = new Float32Array(2 * size);
await group.allGather(new Float32Array([rank, rank * 10]), gathered);
// Block r of the reduced vector lands on rank r.
const send = new Float32Array(2 * size).map((_, i) => i + rank);
const block = new Float32Array(2);
await group.reduceScatter(send, block, 'sum');
// A large buffer (32 MiB) in one all-reduce, and several queued without awaiting in between.
const big = new Float32Array(8 * 2 ** 20).fill(rank + 1);
const queued = [1, 2, 3].map((k) => new Float32Array(1000).fill(k * (rank + 1)));
await Promise.all([group.allReduce(big, 'sum'), ...queued.map((q) => group.allReduce(q, 'sum'))]);
await group.barrier();

const errors = {};
for (const [name, fn] of Object.entries({
  wrongGather: () => group.allGather(new Float32Array(2), new Float32Array(3)),
  wrongScatter: () => group.reduceScatter(new Float32Array(3), new Float32Array(2), 'sum'),
  badOp: () => group.allReduce(new Float32Array(1), 'product'),
  badType: () => group.allReduce(new Uint16Array(1), 'sum'),
  badRoot: () => group.broadcast(new Uint8Array(1), size),
})) {
  try {
    await fn();
    errors[name] = null;
  } catch (err) {
    errors[name] = err.message;
  }
}
Object.assign(out, {
  sum: [...sum],
  avg: [...avg],
  max: [...max],
  f64: f64[0],
  bytes: [...bytes],
  gathered: [...gathered],
  block: [...block],
  bigFirst: big[0],
  bigLast: big[big.length - 1],
  queued: queued.map((q) => q[999]),
  stats: group.stats,
  errors,
});
writeFileSync(join(process.argv[2], `rank-${rank}.json`), JSON.stringify(out));
await group.finalize();
