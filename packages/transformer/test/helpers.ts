import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { disposeModelInputs, type HfModelInputs, type ModelInputs, modelInputsFromHf } from '@tessera/transformer';

export const FIXTURES = join(import.meta.dirname, 'fixtures');

/** inputs.json (HF names) as int32 tensors under our names. */
export function fixtureInputs(name: string): ModelInputs {
  return modelInputsFromHf(JSON.parse(readFileSync(join(FIXTURES, name, 'inputs.json'), 'utf8')) as HfModelInputs);
}

export const disposeInputs = disposeModelInputs;
