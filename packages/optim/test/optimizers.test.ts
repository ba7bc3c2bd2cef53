import { beforeAll, describe, expect, it } from 'vitest';
import {
  Module,
  type Parameter,
  adamwOp,
  adamwUpdate,
  pluginRef,
  registry,
  resolveConfig,
  tf,
  useBackend,
  z,
} from '@tessera/tensor-core';
import '@tessera/kernels-cpu';
import {
  type AdamW,
  type Optimizer,
  type OptimizerStateDict,
  OptimizerStateError,
  SGD,
  createOptimizer,
  disposeStateDict,
  stateDictFromJSON,
  stateDictToJSON,
} from '@tessera/optim';
import { MlpProblem, type Trajectories, disposeGrads, fixture } from './helpers.js';

const doc = fixture<Trajectories>('trajectories.json');

beforeAll(async () => {
  await useBackend('cpu', { log: () => {} });
});

/** One spec per optimizer, with schedules, groups and clipping so the state dict has to carry all of it. */
const SPECS: Record<string, { name: string } & Record<string, unknown>> = {
  sgd: { name: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, schedule: { name: 'step', stepSize: 4, gamma: 0.5 } },
  adam: {
    name: 'adam',
    lr: 0.01,
    weightDecay: 0.01,
    clipGradNorm: 0.5,
    schedule: { name: 'cosine', warmupSteps: 3, totalSteps: 20 },
  },
  adamw: {
    name: 'adamw',
    lr: 0.01,
    groups: [{ params: 'b*', weightDecay: 0, lr: 0.02 }],
    schedule: { name: 'linear', warmupSteps: 3, totalSteps: 20 },
  },
  adafactor: { name: 'adafactor', beta1: 0.9, weightDecay: 0.01 },
  lion: { name: 'lion', lr: 0.001, weightDecay: 0.1, schedule: { name: 'inverse_sqrt', warmupSteps: 2 } },
};

function run(problem: MlpProblem, opt: Optimizer, steps: number): Record<string, Float32Array>[] {
  const out: Record<string, Float32Array>[] = [];
  for (let i = 0; i < steps; i++) {
    const { grads } = problem.grads();
    opt.step(grads);
    disposeGrads(grads);
    out.push(problem.snapshot());
  }
  return out;
}

describe('registry', () => {
  it('registers every optimizer and schedule with an options schema', () => {
    for (const name of ['sgd', 'adam', 'adamw', 'adafactor', 'lion']) {
      expect(registry.optimizer.has(name)).toBe(true);
      expect(registry.optimizer.get(name).meta.options).toBeDefined();
    }
    for (const name of ['constant', 'linear', 'cosine', 'inverse_sqrt', 'step', 'sequential', 'product']) {
      expect(registry.schedule.get(name).meta.options).toBeDefined();
    }
  });

  it('names the known optimizers for an unknown name', () => {
    const problem = new MlpProblem(doc);
    expect(() => createOptimizer({ name: 'adamx' }, problem.params)).toThrow(
      /Unknown optimizer "adamx".*Did you mean "adam/,
    );
    problem.dispose();
  });

  it('a config selects optimizer, groups, clipping and schedule by name', () => {
    const schema = z.object({ optimizer: pluginRef });
    const config = resolveConfig(
      `
optimizer:
  name: adamw
  lr: 3.0e-4
  weightDecay: 0.1
  clipGradNorm: 1.0
  groups:
    - params: ["*.bias", "*norm*"]
      weightDecay: 0
  schedule: { name: cosine, warmupSteps: 10, totalSteps: 100, minRatio: 0.1 }
`,
      { schema },
    );
    class Block extends Module {
      constructor() {
        super();
        this.registerParameter('weight', tf.ones([2, 2]));
        this.registerParameter('bias', tf.zeros([2]));
      }
    }
    class Net extends Module {
      constructor() {
        super();
        this.registerModule('fc', new Block());
        this.registerModule('norm', new Block());
      }
    }
    const net = new Net();
    const opt = createOptimizer(config.optimizer, net) as AdamW;
    expect(opt.kind).toBe('adamw');
    expect(opt.groups.map((g) => g.params)).toEqual([['fc.weight'], ['fc.bias', 'norm.weight', 'norm.bias']]);
    expect(opt.groups.map((g) => g.options.weightDecay)).toEqual([0.1, 0]);
    expect(opt.clipGradNorm).toBe(1);
    expect(opt.currentLrs()).toEqual([0, 0]);
    expect(opt.schedule?.toJSON()).toEqual({ name: 'cosine', warmupSteps: 10, totalSteps: 100, minRatio: 0.1 });
    opt.dispose();
    net.dispose();
  });
});

describe('bad input', () => {
  const problem = () => new MlpProblem(doc);

  it('rejects negative, NaN and infinite learning rates, naming lr', () => {
    const p = problem();
    for (const lr of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => createOptimizer({ name: 'adamw', lr }, p.params)).toThrow(
        /Invalid options for optimizer "adamw":\n {2}- lr: .*learning rate/,
      );
      expect(() => new SGD(p.params, { lr })).toThrow(/lr/);
    }
    expect(() => createOptimizer({ name: 'adam', groups: [{ params: 'b*', lr: -0.1 }] }, p.params)).toThrow(
      /groups\[0\]\.lr/,
    );
    const opt = new SGD(p.params, { lr: 0.1 });
    expect(() => opt.setLr(Number.NaN)).toThrow(/lr must be a finite number >= 0; got NaN/);
    expect(() => createOptimizer({ name: 'sgd' }, p.params)).toThrow(/"sgd" needs an lr/);
    expect(() => createOptimizer({ name: 'sgd', lr: 0.1, momentun: 0.9 }, p.params)).toThrow(/momentun/);
    opt.dispose();
    p.dispose();
  });

  it('rejects group rules that match nothing and gradients for unknown parameters', () => {
    const p = problem();
    expect(() => createOptimizer({ name: 'adamw', groups: [{ params: '*.bais', weightDecay: 0 }] }, p.params)).toThrow(
      /groups\[0\]\.params \["\*\.bais"\] matched no parameter/,
    );
    const opt = createOptimizer({ name: 'adamw' }, p.params);
    const g = tf.zeros([3]);
    expect(() => opt.step(new Map([['nope', g]]))).toThrow(/unknown parameter\(s\): nope/);
    expect(() => opt.step(new Map([['b1', g]]))).toThrow(/gradient for "b1" has shape \[3\], parameter has \[5\]/);
    g.dispose();
    opt.dispose();
    p.dispose();
  });

  it('refuses Adafactor relative step with a manual lr or a schedule', () => {
    const p = problem();
    expect(() => createOptimizer({ name: 'adafactor', lr: 0.1, relativeStep: true }, p.params)).toThrow(/relativeStep/);
    expect(() => createOptimizer({ name: 'adafactor', schedule: { name: 'constant' } }, p.params)).toThrow(
      /relativeStep/,
    );
    p.dispose();
  });

  it('refuses state dicts from another optimizer or with other parameters or shapes', () => {
    const p = problem();
    const adam = createOptimizer({ name: 'adam' }, p.params);
    run(p, adam, 1);
    const sd = adam.stateDict();
    const sgd = createOptimizer({ name: 'sgd', lr: 0.1 }, p.params);
    expect(() => sgd.loadStateDict(sd)).toThrow(/saved from optimizer "adam", not "sgd"/);

    // Same optimizer, different parameter names.
    const renamed = { ...p.params, w3: p.params.w2! } as Record<string, tf.Variable>;
    delete renamed.w2;
    const other = createOptimizer({ name: 'adam' }, renamed);
    expect(() => other.loadStateDict(sd)).toThrow(OptimizerStateError);
    expect(() => other.loadStateDict(sd)).toThrow(
      /missing parameter\(s\) w3[\s\S]*unexpected parameter\(s\) w2[\s\S]*unknown parameter "w2"/,
    );

    // Right names, wrong shapes.
    const bad: OptimizerStateDict = {
      ...sd,
      state: { ...sd.state, b1: { step: 1, tensors: { m: tf.zeros([4]), v: tf.zeros([5]) } } },
    };
    expect(() => adam.loadStateDict(bad)).toThrow(/"b1"\.m: expected \[5\] float32, got \[4\] float32/);
    expect(() => adam.loadStateDict({ ...sd, format: 'x' } as never)).toThrow(/format "tessera\.optim\/1"/);
    // A failed load leaves the optimizer as it was.
    expect(adam.stepCount).toBe(1);
    disposeStateDict(sd);
    for (const t of Object.values(bad.state.b1!.tensors)) t.dispose();
    for (const o of [adam, sgd, other]) o.dispose();
    p.dispose();
  });
});

describe('state dicts resume exactly', () => {
  for (const [name, spec] of Object.entries(SPECS)) {
    it(`${name}: save after 5 updates, restore into a fresh optimizer, next 10 updates identical`, () => {
      const a = new MlpProblem(doc);
      const optA = createOptimizer(spec, a.params);
      run(a, optA, 5);
      // Through plain JSON text, as a checkpoint would store it.
      const live = optA.stateDict();
      const saved = stateDictFromJSON(JSON.parse(JSON.stringify(stateDictToJSON(live))));
      disposeStateDict(live);
      const savedParams = Object.fromEntries(Object.entries(a.params).map(([k, v]) => [k, v.clone()]));
      expect(saved.step).toBe(5);
      const reference = run(a, optA, 10);

      const b = new MlpProblem(doc);
      for (const [k, v] of Object.entries(savedParams)) b.params[k]!.assign(v);
      // The fresh optimizer is built from a different spec on purpose: the state dict carries the rest.
      const optB = createOptimizer({ name, ...(name === 'adafactor' ? { beta1: 0.9 } : { lr: 0.5 }) }, b.params);
      const groups = spec.groups as unknown[] | undefined;
      if (groups) {
        optB.dispose();
        const fresh = createOptimizer({ name, groups }, b.params);
        fresh.loadStateDict(saved);
        check(fresh);
      } else {
        optB.loadStateDict(saved);
        check(optB);
      }
      function check(opt: Optimizer) {
        expect(opt.stepCount).toBe(5);
        const resumed = run(b, opt, 10);
        for (let i = 0; i < 10; i++) {
          for (const k of Object.keys(a.params)) {
            expect(Array.from(resumed[i]![k]!), `${k} at update ${6 + i}`).toEqual(Array.from(reference[i]![k]!));
          }
        }
        opt.dispose();
      }
      disposeStateDict(saved);
      for (const v of Object.values(savedParams)) v.dispose();
      optA.dispose();
      a.dispose();
      b.dispose();
    });
  }
});

describe('fused AdamW', () => {
  it("adamw and adam updates are exactly the fused op's output", () => {
    const p = tf.variable(tf.tensor([0.5, -1, 2]));
    const g = tf.tensor([0.1, -0.2, 0.3]);
    const zeros = tf.zeros([3]);
    const expected = adamwUpdate(p, g, zeros, zeros, { lr: 0.1, step: 1, weightDecay: 0.05 });
    const opt = createOptimizer({ name: 'adamw', lr: 0.1, weightDecay: 0.05 }, { p });
    opt.step({ p: g });
    expect(Array.from(p.dataSync())).toEqual(Array.from(expected.param.dataSync()));
    expect(Array.from(opt.paramState('p')!.tensors.v!.dataSync())).toEqual(Array.from(expected.v.dataSync()));
    expect(adamwOp.hasKernel('cpu')).toBe(true);
    for (const t of [g, zeros, expected.param, expected.m, expected.v]) t.dispose();
    opt.dispose();
    p.dispose();
  });
});

describe('parameters', () => {
  it('takes a Module, updates only trainable parameters and ignores tied aliases', () => {
    class Tied extends Module {
      readonly w: Parameter;
      constructor() {
        super();
        this.w = this.registerParameter('w', tf.ones([3]));
        this.registerParameter('frozen', tf.ones([3]), { trainable: false });
      }
    }
    const m = new Tied();
    const opt = new SGD([...m.namedParameters(), ['alias', m.w] as const], { lr: 0.5 });
    expect(opt.paramNames).toEqual(['w', 'frozen']);
    const trainable = new SGD(m, { lr: 0.5 });
    expect(trainable.paramNames).toEqual(['w']);
    const g = tf.ones([3]);
    // A tied weight listed under two names gets one update, not two.
    opt.step({ w: g, alias: g } as Record<string, tf.Tensor>);
    expect(Array.from(m.w.variable.dataSync())).toEqual([0.5, 0.5, 0.5]);
    g.dispose();
    opt.dispose();
    trainable.dispose();
    m.dispose();
  });

  it('leaves parameters without a gradient alone, with their own step count (as torch)', () => {
    const p = new MlpProblem(doc);
    const opt = createOptimizer({ name: 'adam', lr: 0.01 }, p.params);
    const before = p.snapshot();
    const { grads } = p.grads();
    opt.step({ w1: grads.get('w1')! });
    opt.step(grads);
    disposeGrads(grads);
    expect([opt.paramState('w1')!.step, opt.paramState('b2')!.step, opt.stepCount]).toEqual([2, 1, 2]);
    const after = p.snapshot();
    expect(after.w1).not.toEqual(before.w1);
    opt.dispose();
    p.dispose();
  });

  it('keeps the live tensor count constant over many steps, for every optimizer', () => {
    for (const spec of Object.values(SPECS)) {
      const p = new MlpProblem(doc);
      const opt = createOptimizer(spec, p.params);
      run(p, opt, 1);
      const live = tf.memory().numTensors;
      run(p, opt, 20);
      expect(tf.memory().numTensors, spec.name).toBe(live);
      opt.dispose();
      p.dispose();
    }
  });
});

describe('stepAsync (backends without synchronous reads)', () => {
  // Value and norm clipping, norm clipping alone (the finiteness probe and the norm share a
  // pass), and a norm limit never reached (no multiply by 1).
  const clipping = [{ clipGradValue: 0.5, clipGradNorm: 0.3 }, { clipGradNorm: 0.3 }, { clipGradNorm: 1e6 }];
  for (const [kind, spec] of Object.entries(SPECS))
    for (const clip of clipping) {
      it(`${kind}, ${JSON.stringify(clip)}: stepAsync gives the same parameters as step, bit for bit`, async () => {
        const a = new MlpProblem(doc);
        const b = new MlpProblem(doc);
        const optA = createOptimizer({ ...spec, ...clip }, a.params);
        const optB = createOptimizer({ ...spec, ...clip }, b.params);
        for (let i = 0; i < 5; i++) {
          const ga = a.grads().grads;
          const gb = b.grads().grads;
          const ra = optA.step(ga);
          const rb = await optB.stepAsync(gb);
          expect(rb.gradNorm).toBe(ra.gradNorm);
          disposeGrads(ga);
          disposeGrads(gb);
        }
        const sa = a.snapshot();
        const sb = b.snapshot();
        for (const name of Object.keys(sa)) expect(Array.from(sb[name]!)).toEqual(Array.from(sa[name]!));
        optA.dispose();
        optB.dispose();
      });
    }

  it('stepAsync detects non-finite gradients like step', async () => {
    const p = new MlpProblem(doc);
    const opt = createOptimizer({ name: 'sgd', lr: 0.1, nonFinite: 'skip' }, p.params);
    const { grads } = p.grads();
    const bad = new Map([...grads].map(([n, g], i) => [n, i === 0 ? tf.mul(g, Number.NaN) : g.clone()] as const));
    const result = await opt.stepAsync(bad);
    expect(result.applied).toBe(false);
    expect(opt.skippedSteps).toBe(1);
    disposeGrads(grads);
    disposeGrads(bad);
    opt.dispose();
  });
});
