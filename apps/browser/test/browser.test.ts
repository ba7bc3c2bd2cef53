import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: the server script is plain ESM JavaScript without declarations.
import { startServer } from '../scripts/server.mjs';

// End to end: the built page (dist/page.js) in Debian's headless Chromium, WebGPU on
// whatever adapter Chromium finds (lavapipe on a machine without a GPU).
const CHROMIUM = process.env.TESSERA_CHROMIUM ?? '/usr/bin/chromium';
const required = process.env.TESSERA_REQUIRE_WEBGPU === '1';
const haveChromium = existsSync(CHROMIUM);
const pageBuilt = existsSync(join(import.meta.dirname, '..', 'dist', 'page.js'));

interface PageState {
  backend: string | null;
  losses: number[];
  done: boolean;
  error: string | null;
  sample: string | null;
  msPerStep: number | null;
  adapter: { vendor: string; architecture: string; subgroupMinSize?: number; subgroupMaxSize?: number } | null;
  subgroupSize: number | null;
  accumulatorLimit: number | null;
}

describe.skipIf(!haveChromium && !required)('browser page (headless Chromium, WebGPU)', () => {
  let browser: Browser;
  let server: { url: string; close(): Promise<void> };

  beforeAll(async () => {
    if (!haveChromium) {
      throw new Error(
        `${CHROMIUM} not found: install Debian's chromium (scripts/setup.mjs does) or set TESSERA_CHROMIUM`,
      );
    }
    if (!pageBuilt) throw new Error('dist/page.js is missing: run npm run build -w @tessera/browser-demo');
    server = await startServer(0);
    // Playwright gives every launch a fresh temporary profile (the --user-data-dir the flags want).
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--enable-unsafe-webgpu',
        '--enable-features=Vulkan',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('trains the tiny GPT on webgpu (no cpu fallback) and the loss falls', async () => {
    const page = await browser.newPage();
    const console: string[] = [];
    page.on('console', (m) => console.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => console.push(`pageerror: ${e.message}`));
    await page.goto(`${server.url}?backend=webgpu&steps=40`);
    await page.waitForFunction(() => (window as unknown as { tessera?: PageState }).tessera?.done === true, null, {
      timeout: 240_000,
      polling: 500,
    });
    const state = await page.evaluate(() => (window as unknown as { tessera: PageState }).tessera);
    const log = console.join('\n');
    expect(state.error, log).toBeNull();
    expect(state.backend, 'the page must train on WebGPU, not fall back to cpu').toBe('webgpu');
    expect(state.losses).toHaveLength(40);
    expect(state.losses.every(Number.isFinite)).toBe(true);
    // ln(vocabulary) ≈ 3.6 at the start; 40 AdamW steps at lr 3e-3 bring the mean of the
    // last five well below the first.
    const first = state.losses[0]!;
    const lastFive = state.losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
    expect(first).toBeGreaterThan(3);
    expect(lastFive, `losses: ${state.losses.map((l) => l.toFixed(3)).join(' ')}`).toBeLessThan(first - 0.5);
    expect(state.sample).toMatch(/^Call me Ishmael/);
    // The curve is drawn: one polyline point per step.
    const points = await page.locator('#curve polyline').getAttribute('points');
    expect(points?.trim().split(/\s+/)).toHaveLength(40);
    // Regression: the subgroup matmul runs in the browser too, wherever the adapter offers
    // subgroups at one fixed size (headless Chromium without a GPU: SwiftShader, 4), and
    // within the compiler's accumulator budget on SwiftShader, whose compile of the default
    // 32 × 2 block never finished (the device was lost) when the browser had no budget.
    const offered = await page.evaluate(async () => {
      interface Adapter {
        features: { has(name: string): boolean };
        info: { subgroupMinSize?: number; subgroupMaxSize?: number };
      }
      const gpu = (navigator as unknown as { gpu: { requestAdapter(): Promise<Adapter | null> } }).gpu;
      const a = await gpu.requestAdapter();
      return { subgroups: !!a?.features.has('subgroups'), min: a?.info.subgroupMinSize, max: a?.info.subgroupMaxSize };
    });
    const where = `adapter ${JSON.stringify(state.adapter)}, offered ${JSON.stringify(offered)}`;
    if (offered.subgroups && offered.min === offered.max && offered.min! >= 4 && offered.min! <= 64) {
      expect(state.subgroupSize, where).toBe(offered.min);
    }
    if (state.adapter?.architecture === 'swiftshader') expect(state.accumulatorLimit, where).toBe(16);
    await page.close();
  });
});
