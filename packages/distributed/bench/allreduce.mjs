// The wire alone: `mpirun -np 2 node allreduce.mjs BYTES ITERATIONS` prints (rank 0) the median
// seconds of one float32 all-reduce of BYTES after a barrier, so rank skew is not in it.
import { ProcessGroup } from '@tessera/distributed';

const bytes = Number(process.argv[2] ?? 2 ** 24);
const iterations = Number(process.argv[3] ?? 20);
const group = ProcessGroup.join();
const buffer = new Float32Array(bytes / 4).fill(1);
const times = [];
for (let i = 0; i < iterations; i++) {
  await group.barrier();
  const t0 = performance.now();
  await group.allReduce(buffer, 'sum');
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
if (group.isMain) console.log(JSON.stringify({ bytes, medianMs: times[Math.floor(times.length / 2)] }));
await group.finalize();
