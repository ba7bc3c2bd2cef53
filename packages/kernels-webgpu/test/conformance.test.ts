import { describe, it } from 'vitest';
import { webgpuStatus } from '@tessera/kernels-webgpu';
import { describeConformance } from '../../../tools/testing/conformance.js';

// The conformance suite, instantiated for "webgpu" against the cpu reference, where a
// WebGPU adapter exists (a GPU's Vulkan driver, or lavapipe from
// scripts/setup-lavapipe.mjs). Level 1's expected failures are @tessera/conformance's
// expectations/level1/webgpu.json. Without an adapter the suite skips and says why;
// TESSERA_REQUIRE_WEBGPU=1 makes that a failure, as in the other webgpu tests.
const status = await webgpuStatus();
if (status.available) {
  await describeConformance({ backend: 'webgpu', imports: ['@tessera/kernels-webgpu'], requireAllLevels: true });
} else {
  describe('conformance: backend "webgpu"', () => {
    it.skipIf(process.env.TESSERA_REQUIRE_WEBGPU !== '1')(`skipped: no WebGPU adapter: ${status.reason}`, () => {
      throw new Error(`TESSERA_REQUIRE_WEBGPU=1 but there is no WebGPU adapter: ${status.reason}`);
    });
  });
}
