// The tolerance comparison of @tessera/conformance (the one rule level 2 and level 3
// apply), for the tests of packages below it in the graph: tensor-core and transformer
// cannot depend on conformance, so they take its source module, which has no runtime
// imports, instead of the built package. Backend packages import '@tessera/conformance'.
import {
  type CloseTolerance,
  type Comparable,
  type Comparison,
  expectClose as expectWithin,
} from '../../packages/conformance/src/compare.js';

export {
  type CloseTolerance,
  type Comparable,
  type Comparison,
  compareTensors,
  hostOf,
} from '../../packages/conformance/src/compare.js';

/**
 * Throws unless `actual` is within `tolerance` of `expected` (maxAbs <= atol + rtol * scale).
 * A number is an rtol with `atol` beside it, for tensors that are mathematically ~0.
 */
export function expectClose(
  actual: Comparable,
  expected: Comparable,
  tolerance: CloseTolerance | number,
  label = '',
  atol = 1e-7,
): Comparison {
  return expectWithin(actual, expected, typeof tolerance === 'number' ? { rtol: tolerance, atol } : tolerance, label);
}
