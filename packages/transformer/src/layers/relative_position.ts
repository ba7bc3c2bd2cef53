/**
 * T5's relative position bucket for a (key − query) distance, with the float32
 * arithmetic mirrored step by step (Math.fround) so bucket boundaries land exactly where
 * PyTorch's float32 log puts them.
 */
export function relativePositionBucket(
  relativePosition: number,
  bidirectional: boolean,
  numBuckets: number,
  maxDistance: number,
): number {
  let bucket = 0;
  let n = numBuckets;
  let distance: number;
  if (bidirectional) {
    n = Math.floor(n / 2);
    if (relativePosition > 0) bucket += n;
    distance = Math.abs(relativePosition);
  } else {
    distance = -Math.min(relativePosition, 0);
  }
  const maxExact = Math.floor(n / 2);
  if (distance < maxExact) return bucket + distance;
  const f = Math.fround;
  const ratio = f(f(distance) / maxExact);
  const scaled = f(f(f(Math.log(ratio)) / f(Math.log(maxDistance / maxExact))) * (n - maxExact));
  const large = Math.min(maxExact + Math.trunc(scaled), n - 1);
  return bucket + large;
}

/** Bucket ids [queryLen, keyLen] for queries at positions queryStart.. and keys 0..keyLen-1. */
export function relativePositionBuckets(
  queryStart: number,
  queryLen: number,
  keyLen: number,
  bidirectional: boolean,
  numBuckets: number,
  maxDistance: number,
): Int32Array {
  const out = new Int32Array(queryLen * keyLen);
  for (let i = 0; i < queryLen; i++) {
    for (let j = 0; j < keyLen; j++) {
      out[i * keyLen + j] = relativePositionBucket(j - (queryStart + i), bidirectional, numBuckets, maxDistance);
    }
  }
  return out;
}
