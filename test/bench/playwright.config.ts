import { defineConfig } from '@playwright/test';
import { CHROMIUM_ARGS } from '../../playwright.config.js';

/** The renderer benchmark: `npx playwright test --config test/bench/playwright.config.ts`. */
export default defineConfig({
  testDir: '.',
  testMatch: '*.bench.ts',
  timeout: 15 * 60_000,
  workers: 1,
  reporter: [['list']],
  outputDir: '../../test-results/bench',
  use: {
    browserName: 'chromium',
    launchOptions: { executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS },
  },
});
