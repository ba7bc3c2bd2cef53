import type { Tolerance } from './types.js';

/**
 * Tolerances for level 2, by kind of computation. Every backend is compared with the
 * cpu reference on the same float32 inputs, so what may differ is only rounding: the
 * order of a sum, fused multiply-adds, and how a transcendental function is approximated.
 * Each class says how much of that is legitimate; anything beyond is a bug.
 * (float32 machine epsilon is 1.19e-7.)
 */
const EPS32 = 1.19e-7;

/** Copies, gathers, comparisons, casts and integer arithmetic have exactly one right answer. */
export const EXACT: Tolerance = {
  rtol: 0,
  atol: 0,
  why: 'data movement, comparisons, casts and integer arithmetic have one right answer',
};

/**
 * One rounding per element (add, mul, div, max, ...). A backend may contract a*b+c into an
 * fma or divide by multiplying with a reciprocal: a few ulp, so 8 ulp of the tensor's scale.
 */
export const ELEMENTWISE: Tolerance = {
  rtol: 8 * EPS32,
  atol: 0,
  why: 'one rounding per element; fma contraction and reciprocal division allow a few ulp (8 ulp of scale)',
};

/**
 * exp, log, tanh, erf, sqrt, pow...: GPU and SIMD libraries guarantee a few ulp at best
 * (WGSL's exp/log: 3 + 2|x| ulp) and erf/tanh are polynomial approximations. 1e-5 of the
 * tensor's scale is ~80 ulp, plus 1e-6 absolute for results that are ~0 where the
 * approximations differ in absolute, not relative, terms.
 */
export const TRANSCENDENTAL: Tolerance = {
  rtol: 1e-5,
  atol: 1e-6,
  why: 'transcendental functions are approximated differently per backend (a few ulp to ~1e-7 absolute)',
};

/**
 * A sum of n products (matMul, reductions, norms, softmax denominators). Summation order
 * differs between backends (sequential, pairwise, tree, blocked). For random inputs the
 * rounding error of an n-term sum grows like eps·sqrt(n) of the result's scale; allowing
 * 8·eps·sqrt(n) (≈ 1e-6·sqrt(n)) leaves a safety factor of ~8, and never less than the
 * transcendental tolerance because most of these ops also take an exp or a sqrt.
 */
export function accumulation(n: number, why = 'sum'): Tolerance {
  const rtol = Math.max(TRANSCENDENTAL.rtol, 8 * EPS32 * Math.sqrt(Math.max(1, n)));
  return {
    rtol: Number(rtol.toPrecision(2)),
    atol: TRANSCENDENTAL.atol,
    why: `${why} over ${n} terms: summation order differs per backend (8·eps·sqrt(n) of scale, at least 1e-5)`,
  };
}

/**
 * Inputs chosen to lose digits (a mean of 1 with a spread of 1e-2, logits of ±1e3):
 * both backends see the same float32 inputs, but x - mean cancels log10(|mean|/std)
 * digits, so the tolerance grows by that factor.
 */
export function illConditioned(base: Tolerance, factor: number, what: string): Tolerance {
  return {
    rtol: Number((base.rtol * factor).toPrecision(2)),
    atol: base.atol * factor,
    why: `${base.why}; ×${factor} because ${what}`,
  };
}
