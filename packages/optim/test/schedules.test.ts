import { describe, expect, it } from 'vitest';
import { registry } from '@tessera/tensor-core';
import { type ScheduleSpec, createSchedule } from '@tessera/optim';
import { fixture } from './helpers.js';

interface SchedulesDoc {
  steps: number;
  schedules: { spec: ScheduleSpec; factors: number[] }[];
  torchStepLR: { spec: ScheduleSpec; factors: number[] };
}
const doc = fixture<SchedulesDoc>('schedules.json');

describe('schedules', () => {
  for (const { spec, factors } of doc.schedules) {
    it(`${JSON.stringify(spec)} matches the reference factors`, () => {
      const s = createSchedule(spec);
      for (let i = 0; i < doc.steps; i++) expect(s.factor(i), `step ${i}`).toBeCloseTo(factors[i]!, 12);
    });
  }

  it('"step" matches torch.optim.lr_scheduler.StepLR', () => {
    const s = createSchedule(doc.torchStepLR.spec);
    for (const [i, f] of doc.torchStepLR.factors.entries()) expect(s.factor(i)).toBeCloseTo(f, 12);
  });

  it('linear warm-up starts at 0 and ends at 1; cosine holds its floor past totalSteps', () => {
    const linear = createSchedule({ name: 'linear', warmupSteps: 4, totalSteps: 10 });
    expect([0, 1, 4, 10, 20].map((i) => linear.factor(i))).toEqual([0, 0.25, 1, 0, 0]);
    const cosine = createSchedule({ name: 'cosine', warmupSteps: 0, totalSteps: 10, minRatio: 0.1 });
    expect(cosine.factor(10)).toBeCloseTo(0.1, 12);
    expect(cosine.factor(1000)).toBeCloseTo(0.1, 12);
  });

  it('serialises: toJSON through JSON text rebuilds the same schedule, nested ones included', () => {
    for (const { spec } of doc.schedules) {
      const s = createSchedule(spec);
      const again = createSchedule(JSON.parse(JSON.stringify(s.toJSON())));
      expect(again.toJSON()).toEqual(s.toJSON());
      for (const i of [0, 3, 17, 59, 119]) expect(again.factor(i)).toBe(s.factor(i));
    }
  });

  it('gives clear errors for unknown names, bad options and bad steps', () => {
    expect(() => createSchedule({ name: 'cosin' })).toThrow(/Unknown schedule "cosin".*Did you mean "cosine"/);
    expect(() =>
      createSchedule({ name: 'sequential', milestones: [5], schedules: [{ name: 'constant' }, { name: 'warp' }] }),
    ).toThrow(/Unknown schedule "warp"/);
    expect(() => createSchedule({ name: 'linear', warmupSteps: 20, totalSteps: 10 })).toThrow(/warmupSteps/);
    expect(() => createSchedule({ name: 'linear' })).toThrow(/totalSteps/);
    expect(() => createSchedule({ name: 'step', stepSize: 0 })).toThrow(/stepSize/);
    expect(() =>
      createSchedule({ name: 'sequential', milestones: [], schedules: [{ name: 'constant' }, { name: 'constant' }] }),
    ).toThrow(/milestones/);
    expect(() => createSchedule({ name: 'constant' }).factor(-1)).toThrow(/step must be an integer >= 0/);
    expect(registry.schedule.list()).toEqual(
      expect.arrayContaining(['constant', 'cosine', 'inverse_sqrt', 'linear', 'step']),
    );
  });
});
