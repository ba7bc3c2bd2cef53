import { tf, type Tensor } from '@tessera/tensor-core';
import { accumulation, ELEMENTWISE, EXACT, illConditioned, TRANSCENDENTAL } from '../tolerances.js';
import { bools, fixed, ints, normal, type OpCase, signedUniform, smallFloats, uniform } from './case.js';

/**
 * Level-2 cases for the standard (tfjs) kernels that GPT, BERT and T5 training run:
 * matmuls of every projection and of attention, embedding gathers and their scatter-add
 * gradient, softmax / logSoftmax, reductions, elementwise math, the reshapes of head
 * splitting, masks (comparisons, where, casts), and the int arithmetic of T5's
 * relative-position buckets. Shapes include size 1, odd sizes, a large last dimension
 * and broadcasting; a few inputs are extreme on purpose.
 */
export function standardOpCases(): OpCase[] {
  const cases: OpCase[] = [];
  const add = (c: OpCase) => cases.push(c);
  const last = (s: number[]) => s[s.length - 1]!;

  // --- matMul / batchMatMul: every projection (2D and batched) and attention's q·kᵀ, p·v.
  const matmuls: [string, number[], number[], boolean, boolean][] = [
    ['[1,1]x[1,1]', [1, 1], [1, 1], false, false],
    ['[3,7]x[7,5]', [3, 7], [7, 5], false, false],
    ['transposeA [7,3]ᵀx[7,5]', [7, 3], [7, 5], true, false],
    ['transposeB [3,7]x[5,7]ᵀ', [3, 7], [5, 7], false, true],
    ['transposeA+B [7,3]ᵀx[5,7]ᵀ', [7, 3], [5, 7], true, true],
    ['large K [2,2048]x[2048,3]', [2, 2048], [2048, 3], false, false],
    ['large N [4,33]x[33,1031]', [4, 33], [33, 1031], false, false],
    ['batched [2,3,5]x[2,5,4]', [2, 3, 5], [2, 5, 4], false, false],
    ['batched transposeA [2,5,3]ᵀx[2,5,4]', [2, 5, 3], [2, 5, 4], true, false],
    ['attention scores [2,3,5,8]x[2,3,6,8]ᵀ', [2, 3, 5, 8], [2, 3, 6, 8], false, true],
    ['attention values [2,3,5,6]x[2,3,6,8]', [2, 3, 5, 6], [2, 3, 6, 8], false, false],
  ];
  for (const [variant, a, b, ta, tb] of matmuls) {
    const k = ta ? a[a.length - 2]! : last(a);
    const m = ta ? last(a) : a[a.length - 2]!;
    const n = tb ? b[b.length - 2]! : last(b);
    const batch = Math.max(1, ...a.slice(0, -2), ...b.slice(0, -2));
    add({
      name: `matMul/${variant}`,
      group: 'matMul',
      inputs: (rng) => [normal(rng, 'a', a), normal(rng, 'b', b)],
      run: ([x, y]) => tf.matMul(x!, y!, ta, tb),
      grad: [0, 1],
      tolerance: accumulation(k, 'dot product'),
      // dA sums over N, dB over M and the (broadcast) batch.
      gradTolerance: accumulation(Math.max(n, m * batch), 'dot product'),
    });
  }

  // tfjs-core 4.22's BatchMatMul gradient does not sum a broadcast batch back to [1,...]
  // (it throws on the reference too), so a broadcast batch is checked forward only.
  add({
    name: 'matMul/broadcast batch [1,3,4]x[2,4,5] (forward only)',
    group: 'matMul',
    inputs: (rng) => [normal(rng, 'a', [1, 3, 4]), normal(rng, 'b', [2, 4, 5])],
    run: ([x, y]) => tf.matMul(x!, y!),
    tolerance: accumulation(4, 'dot product'),
  });

  // --- gather: token / position embeddings, T5's relative-position bias table; the
  // gradient is a scatter-add (unsortedSegmentSum) that must add repeated ids.
  const gathers: [string, number[], number[], number, number][] = [
    ['embedding [11,7] ids [2,5]', [11, 7], [2, 5], 0, 11],
    ['vocab [1000,16] ids [4,9]', [1000, 16], [4, 9], 0, 1000],
    ['one row [1,5] ids [3]', [1, 5], [3], 0, 1],
    ['bias table [32,4] ids [5,5]', [32, 4], [5, 5], 0, 32],
    ['axis 1 [3,10,2] ids [4]', [3, 10, 2], [4], 1, 10],
  ];
  for (const [variant, table, idShape, axis, n] of gathers) {
    add({
      name: `gather/${variant}`,
      group: 'gather',
      inputs: (rng) => {
        const ids = ints(rng, 'ids', idShape, 0, n);
        // Repeated ids and both ends of the table, so the scatter-add meets collisions.
        ids.values[0] = 0;
        if (ids.values.length > 2) ids.values[ids.values.length - 1] = n - 1;
        if (ids.values.length > 3) ids.values[1] = ids.values[2]!;
        return [normal(rng, 'table', table), ids];
      },
      run: ([t, ids]) => tf.gather(t!, ids!, axis),
      grad: [0],
      tolerance: EXACT,
      gradTolerance: accumulation(
        idShape.reduce((a, b) => a * b, 1),
        'scatter-add',
      ),
    });
  }

  // --- softmax / logSoftmax over the last axis.
  const softmaxShapes: [string, number[], number][] = [
    ['[1,1]', [1, 1], 1],
    ['[3,7]', [3, 7], 1],
    ['[2,3,4096] large last dim', [2, 3, 4096], 1],
    ['[4,9] large logits (std 50)', [4, 9], 50],
  ];
  for (const [fn, name] of [
    [tf.softmax, 'softmax'],
    [tf.logSoftmax, 'logSoftmax'],
  ] as const) {
    for (const [variant, shape, std] of softmaxShapes) {
      const tol = accumulation(last(shape), name);
      add({
        name: `${name}/${variant}`,
        group: name,
        inputs: (rng) => [normal(rng, 'x', shape, std)],
        run: ([x]) => fn(x!),
        grad: [0],
        tolerance: std > 1 ? illConditioned(tol, 5, 'logits of ±150 leave few significant digits in x - max') : tol,
      });
    }
    // Additive masks as BERT/GPT compositions build them: -1e9 where masked, one row fully masked.
    add({
      name: `${name}/masked rows [3,6] (-1e9, one row fully masked)`,
      group: name,
      inputs: (rng) => {
        const x = normal(rng, 'x', [3, 6]);
        for (const i of [1, 4, 5, 6, 7, 8, 9, 10, 11]) x.values[i] = -1e9;
        return [x];
      },
      run: ([x]) => fn(x!),
      grad: [0],
      tolerance: accumulation(6, name),
    });
  }

  // --- reductions.
  const reductions: [string, (x: Tensor) => Tensor, number[], number][] = [
    ['sum/axis -1 [3,7]', (x) => tf.sum(x, -1), [3, 7], 7],
    ['sum/axes [0,1] [4,5,6]', (x) => tf.sum(x, [0, 1]), [4, 5, 6], 20],
    ['sum/all [4099]', (x) => tf.sum(x), [4099], 4099],
    ['sum/keepDims [1,1]', (x) => tf.sum(x, -1, true), [1, 1], 1],
    ['mean/axis -1 keepDims [2,3,4096]', (x) => tf.mean(x, -1, true), [2, 3, 4096], 4096],
    ['mean/axis 0 [9,5]', (x) => tf.mean(x, 0), [9, 5], 9],
    ['max/axis -1 [3,7]', (x) => tf.max(x, -1), [3, 7], 1],
    ['max/all [1]', (x) => tf.max(x), [1], 1],
    ['min/axis 1 [3,7,2]', (x) => tf.min(x, 1), [3, 7, 2], 1],
    ['logSumExp/axis -1 [3,4096]', (x) => tf.logSumExp(x, -1), [3, 4096], 4096],
    ['logSumExp/axis -1 keepDims [5,1]', (x) => tf.logSumExp(x, -1, true), [5, 1], 1],
  ];
  for (const [variant, fn, shape, n] of reductions) {
    const group = variant.split('/')[0]!;
    add({
      name: variant,
      group,
      inputs: (rng) => [normal(rng, 'x', shape)],
      run: ([x]) => fn(x!),
      grad: [0],
      tolerance: n === 1 && group !== 'logSumExp' ? EXACT : accumulation(n, group),
    });
  }
  add({
    name: 'argMax/axis -1 [5,11]',
    group: 'argMax',
    inputs: (rng) => [normal(rng, 'x', [5, 11])],
    run: ([x]) => tf.argMax(x!, -1),
    tolerance: EXACT,
  });
  add({
    name: 'norm/global gradient norm [3,7]+[11]',
    group: 'norm',
    inputs: (rng) => [normal(rng, 'a', [3, 7]), normal(rng, 'b', [11])],
    run: ([a, b]) => tf.tidy(() => tf.sqrt(tf.addN([tf.sum(tf.square(a!)), tf.sum(tf.square(b!))]))),
    grad: [0, 1],
    tolerance: accumulation(32, 'sum of squares'),
  });

  // --- elementwise binary, with broadcasting (biases, scales, masks).
  const binaries: [string, (a: Tensor, b: Tensor) => Tensor, 'normal' | 'denominator' | 'base' | 'ties'][] = [
    ['add', tf.add, 'normal'],
    ['sub', tf.sub, 'normal'],
    ['mul', tf.mul, 'normal'],
    ['div', tf.div, 'denominator'],
    ['maximum', tf.maximum, 'normal'],
    ['minimum', tf.minimum, 'normal'],
    ['squaredDifference', tf.squaredDifference, 'normal'],
    ['pow', tf.pow, 'base'],
  ];
  const pairs: [string, number[], number[]][] = [
    ['[1]·[1]', [1], [1]],
    ['[3,7]·[3,7]', [3, 7], [3, 7]],
    ['broadcast [3,1,5]·[4,1]', [3, 1, 5], [4, 1]],
    ['bias [2,3,1031]·[1031]', [2, 3, 1031], [1031]],
    ['scalar [3,7]·[]', [3, 7], []],
  ];
  // tfjs-core 4.22's Maximum, Minimum and SquaredDifference gradients do not reduce to a
  // broadcast input's shape (they throw on the reference too): those are forward only.
  const broadcastGradBroken = new Set(['maximum', 'minimum', 'squaredDifference']);
  for (const [name, fn, kind] of binaries) {
    for (const [variant, sa, sb] of pairs) {
      const forwardOnly = broadcastGradBroken.has(name) && sa.join() !== sb.join();
      const broadcastTerms = Math.max(
        1,
        sa.reduce((p, d) => p * d, 1) /
          Math.max(
            1,
            sb.reduce((p, d) => p * d, 1),
          ),
      );
      add({
        name: `${name}/${variant}${forwardOnly ? ' (forward only)' : ''}`,
        group: name,
        inputs: (rng) =>
          kind === 'base'
            ? [uniform(rng, 'a', sa, 0.1, 3), normal(rng, 'b', sb)]
            : kind === 'denominator'
              ? [normal(rng, 'a', sa), signedUniform(rng, 'b', sb, 0.5, 2)]
              : [normal(rng, 'a', sa), normal(rng, 'b', sb)],
        run: ([a, b]) => fn(a!, b!),
        ...(forwardOnly ? {} : { grad: [0, 1] }),
        tolerance: name === 'pow' ? TRANSCENDENTAL : ELEMENTWISE,
        // The gradient of a broadcast input sums over the broadcast axes.
        gradTolerance: name === 'pow' ? accumulation(broadcastTerms, 'pow') : accumulation(broadcastTerms, 'broadcast'),
      });
    }
  }
  add({
    name: 'maximum/ties [4,6]',
    group: 'maximum',
    inputs: (rng) => [smallFloats(rng, 'a', [4, 6]), smallFloats(rng, 'b', [4, 6])],
    run: ([a, b]) => tf.maximum(a!, b!),
    grad: [0, 1],
    tolerance: EXACT,
  });

  // --- elementwise unary: activations, norms' rsqrt, T5's log buckets, position encodings.
  const unaries: [string, (x: Tensor) => Tensor, 'normal' | 'positive' | 'unit', boolean][] = [
    ['neg', tf.neg, 'normal', false],
    ['abs', tf.abs, 'normal', false],
    ['square', tf.square, 'normal', false],
    ['relu', tf.relu, 'normal', false],
    ['reciprocal', tf.reciprocal, 'positive', false],
    ['exp', tf.exp, 'normal', true],
    ['log', tf.log, 'positive', true],
    ['log1p', tf.log1p, 'positive', true],
    ['sqrt', tf.sqrt, 'positive', true],
    ['rsqrt', tf.rsqrt, 'positive', true],
    ['tanh', tf.tanh, 'normal', true],
    ['sigmoid', tf.sigmoid, 'normal', true],
    ['erf', tf.erf, 'normal', true],
    ['sin', tf.sin, 'normal', true],
    ['cos', tf.cos, 'normal', true],
    ['softplus', tf.softplus, 'normal', true],
    ['floor', tf.floor, 'normal', false],
  ];
  for (const [name, fn, domain, transcendental] of unaries) {
    for (const [variant, shape] of [
      ['[1]', [1]],
      ['[3,7]', [3, 7]],
      ['[2,1031]', [2, 1031]],
    ] as [string, number[]][]) {
      add({
        name: `${name}/${variant}`,
        group: name,
        inputs: (rng) => [domain === 'positive' ? uniform(rng, 'x', shape, 0.05, 10) : normal(rng, 'x', shape, 3)],
        run: ([x]) => fn(x!),
        grad: [0],
        tolerance: transcendental ? TRANSCENDENTAL : ELEMENTWISE,
      });
    }
  }
  // Saturation and overflow: results at 0, 1, inf and denormals must match (or be within atol).
  for (const [name, fn] of [
    ['exp', tf.exp],
    ['tanh', tf.tanh],
    ['sigmoid', tf.sigmoid],
    ['erf', tf.erf],
    ['softplus', tf.softplus],
  ] as const) {
    add({
      name: `${name}/extreme values [12]`,
      group: name,
      inputs: () => [fixed('x', [12], [-100, -88, -30, -10, -1e-6, 0, 1e-6, 10, 30, 80, 88, 100])],
      run: ([x]) => fn(x!),
      grad: name === 'exp' ? undefined : [0],
      tolerance: TRANSCENDENTAL,
    });
  }

  // --- shapes: head split/merge, KV slices, concatenation, padding. Pure data movement.
  const movement: [string, number[][], (xs: Tensor[]) => Tensor | Tensor[], number][] = [
    ['reshape/[2,3,4]->[6,4]', [[2, 3, 4]], ([x]) => tf.reshape(x!, [6, 4]), 1],
    ['reshape/[1]->[1,1,1]', [[1]], ([x]) => tf.reshape(x!, [1, 1, 1]), 1],
    ['transpose/heads [2,5,3,4] perm 0,2,1,3', [[2, 5, 3, 4]], ([x]) => tf.transpose(x!, [0, 2, 1, 3]), 1],
    ['transpose/2D [7,3]', [[7, 3]], ([x]) => tf.transpose(x!), 1],
    ['slice/2D [5,7] at [1,2] size [3,4]', [[5, 7]], ([x]) => tf.slice(x!, [1, 2], [3, 4]), 1],
    [
      'slice/4D causal band [1,2,7,7] size [1,2,3,3]',
      [[1, 2, 7, 7]],
      ([x]) => tf.slice(x!, [0, 0, 4, 0], [1, 2, 3, 3]),
      1,
    ],
    [
      'concat/axis -1 [3,2]+[3,5]',
      [
        [3, 2],
        [3, 5],
      ],
      (xs) => tf.concat(xs, -1),
      1,
    ],
    [
      'concat/axis 0 [1,4]+[2,4]+[1,4]',
      [
        [1, 4],
        [2, 4],
        [1, 4],
      ],
      (xs) => tf.concat(xs, 0),
      1,
    ],
    [
      'concat/KV cache [1,2,5,4]+[1,2,1,4]',
      [
        [1, 2, 5, 4],
        [1, 2, 1, 4],
      ],
      (xs) => tf.concat(xs, 2),
      1,
    ],
    [
      'stack/[3,4]x2 axis 1',
      [
        [3, 4],
        [3, 4],
      ],
      (xs) => tf.stack(xs, 1),
      1,
    ],
    ['split/[3,8] into 2,5,1', [[3, 8]], ([x]) => tf.split(x!, [2, 5, 1], 1), 1],
    ['expandDims/[3,5] axis 1', [[3, 5]], ([x]) => tf.expandDims(x!, 1), 1],
    ['squeeze/[3,1,5]', [[3, 1, 5]], ([x]) => tf.squeeze(x!, [1]), 1],
    [
      'pad/[3,4] by [[1,0],[0,2]]',
      [[3, 4]],
      ([x]) =>
        tf.pad(x!, [
          [1, 0],
          [0, 2],
        ]),
      1,
    ],
    ['reverse/[3,5] axis 1', [[3, 5]], ([x]) => tf.reverse(x!, 1), 1],
    ['tile/[2,3] by [2,1]', [[2, 3]], ([x]) => tf.tile(x!, [2, 1]), 2],
    ['broadcastTo/[1,5]->[3,5]', [[1, 5]], ([x]) => tf.broadcastTo(x!, [3, 5]), 3],
  ];
  for (const [variant, shapes, fn, fold] of movement) {
    add({
      name: variant,
      group: variant.split('/')[0]!,
      inputs: (rng) => shapes.map((s, i) => normal(rng, `x${i}`, s)),
      run: fn,
      grad: shapes.map((_, i) => i),
      tolerance: EXACT,
      // tile and broadcastTo fold copies back in their gradient: a (tiny) sum.
      gradTolerance: fold > 1 ? accumulation(fold, 'fold') : EXACT,
    });
  }

  // --- masks: where (with a broadcast condition), comparisons, logic, casts.
  add({
    name: 'where/[3,7]',
    group: 'where',
    inputs: (rng) => [bools(rng, 'cond', [3, 7]), normal(rng, 'a', [3, 7]), normal(rng, 'b', [3, 7])],
    run: ([c, a, b]) => tf.where(c!, a!, b!),
    grad: [1, 2],
    tolerance: EXACT,
  });
  add({
    name: 'where/broadcast condition [2,1,5] over [2,3,5]',
    group: 'where',
    inputs: (rng) => [bools(rng, 'cond', [2, 1, 5]), normal(rng, 'a', [2, 3, 5]), normal(rng, 'b', [2, 3, 5])],
    run: ([c, a, b]) => tf.where(c!, a!, b!),
    grad: [1, 2],
    tolerance: EXACT,
  });
  for (const [name, fn] of [
    ['equal', tf.equal],
    ['notEqual', tf.notEqual],
    ['greater', tf.greater],
    ['greaterEqual', tf.greaterEqual],
    ['less', tf.less],
    ['lessEqual', tf.lessEqual],
  ] as const) {
    add({
      name: `${name}/ties [4,6]·[6]`,
      group: name,
      inputs: (rng) => [smallFloats(rng, 'a', [4, 6]), smallFloats(rng, 'b', [6])],
      run: ([a, b]) => fn(a!, b!),
      tolerance: EXACT,
    });
  }
  for (const [name, fn] of [
    ['logicalAnd', tf.logicalAnd],
    ['logicalOr', tf.logicalOr],
  ] as const) {
    add({
      name: `${name}/[3,7]`,
      group: name,
      inputs: (rng) => [bools(rng, 'a', [3, 7]), bools(rng, 'b', [3, 7])],
      run: ([a, b]) => fn(a!, b!),
      tolerance: EXACT,
    });
  }
  add({
    name: 'logicalNot/[3,7]',
    group: 'logicalNot',
    inputs: (rng) => [bools(rng, 'a', [3, 7])],
    run: ([a]) => tf.logicalNot(a!),
    tolerance: EXACT,
  });
  const casts: [string, 'float32' | 'int32' | 'bool', 'float32' | 'int32' | 'bool'][] = [
    ['float32->int32 (truncates, negatives too)', 'float32', 'int32'],
    ['int32->float32', 'int32', 'float32'],
    ['bool->float32', 'bool', 'float32'],
    ['float32->bool', 'float32', 'bool'],
    ['int32->bool', 'int32', 'bool'],
  ];
  for (const [variant, from, to] of casts) {
    add({
      name: `cast/${variant}`,
      group: 'cast',
      inputs: (rng) => [
        from === 'float32'
          ? normal(rng, 'x', [3, 7], 4)
          : from === 'int32'
            ? ints(rng, 'x', [3, 7], -3, 4)
            : bools(rng, 'x', [3, 7]),
      ],
      run: ([x]) => tf.cast(x!, to),
      tolerance: EXACT,
    });
  }
  add({
    name: 'cast/float32->float32 gradient is the identity',
    group: 'cast',
    inputs: (rng) => [normal(rng, 'x', [5])],
    run: ([x]) => tf.cast(x!, 'float32'),
    grad: [0],
    tolerance: EXACT,
  });
  add({
    name: 'clipByValue/[3,7] to [-1,1]',
    group: 'clipByValue',
    inputs: (rng) => [normal(rng, 'x', [3, 7], 2)],
    run: ([x]) => tf.clipByValue(x!, -1, 1),
    grad: [0],
    tolerance: EXACT,
  });

  // --- integer arithmetic of T5's relative-position buckets, and mask construction.
  for (const [name, fn] of [
    ['add', tf.add],
    ['sub', tf.sub],
    ['mul', tf.mul],
    ['floorDiv', tf.floorDiv],
    ['mod', tf.mod],
    ['minimum', tf.minimum],
    ['maximum', tf.maximum],
  ] as const) {
    add({
      name: `int32 ${name}/[4,6]·[6]`,
      group: `int32 ${name}`,
      inputs: (rng) => {
        const b = ints(rng, 'b', [6], 1, 9);
        if (name === 'mod' || name === 'floorDiv') b.values[0] = -3; // negative divisors: floor semantics
        return [ints(rng, 'a', [4, 6], -20, 20), b];
      },
      run: ([a, b]) => fn(a!, b!),
      tolerance: EXACT,
    });
  }
  add({
    name: 'abs/int32 relative positions [5,5]',
    group: 'int32 abs',
    inputs: () => {
      const v: number[] = [];
      for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) v.push(j - i);
      return [fixed('x', [5, 5], v, 'int32')];
    },
    run: ([x]) => tf.abs(x!),
    tolerance: EXACT,
  });
  add({
    name: 'oneHot/ids [7] depth 11',
    group: 'oneHot',
    inputs: (rng) => [ints(rng, 'ids', [7], 0, 11)],
    run: ([ids]) => tf.oneHot(ids!, 11),
    tolerance: EXACT,
  });
  add({
    name: 'range/0..17 step 2 int32',
    group: 'range',
    inputs: () => [],
    run: () => tf.range(0, 17, 2, 'int32'),
    tolerance: EXACT,
  });
  add({
    name: 'bandPart/causal mask [6,6]',
    group: 'bandPart',
    inputs: () => [fixed('x', [6, 6], new Array(36).fill(1))],
    run: ([x]) => tf.linalg.bandPart(x!, -1, 0),
    tolerance: EXACT,
  });
  add({
    name: 'fill/zerosLike/onesLike [3,7]',
    group: 'fill',
    inputs: (rng) => [normal(rng, 'x', [3, 7])],
    run: ([x]) => [tf.fill([2, 3], 0.5), tf.zerosLike(x!), tf.onesLike(x!)],
    tolerance: EXACT,
  });

  return cases;
}
