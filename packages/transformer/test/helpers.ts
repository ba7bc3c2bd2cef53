import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { disposeModelInputs, type HfModelInputs, type ModelInputs, modelInputsFromHf } from '@tessera/transformer';

// The PyTorch fixtures belong to @tessera/conformance (its level 3 ships them); the
// transformer's own tests read them from the checkout, so no runtime dependency follows.
export const FIXTURES = join(import.meta.dirname, '..', '..', 'conformance', 'fixtures');

/** inputs.json (HF names) as int32 tensors under our names. */
export function fixtureInputs(name: string): ModelInputs {
  return modelInputsFromHf(JSON.parse(readFileSync(join(FIXTURES, name, 'inputs.json'), 'utf8')) as HfModelInputs);
}

export const disposeInputs = disposeModelInputs;
