/*
 * The browser test runs Debian's Chromium (/usr/bin/chromium; `make test-ui` installs
 * it), never a browser Playwright downloads: CI has no route to Playwright's CDN, so
 * installs run with PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1. global-setup.ts starts a real
 * JupyterLab from the project's venv on a free port and hands its URL to the tests.
 */
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: './tests',
  globalSetup: './global-setup.ts',
  outputDir: './test-results',
  // One JupyterLab, one browser: on 2 cores, JupyterLab takes 10-20 s to start and a
  // kernel a few more to import the store, so waits are generous.
  workers: 1,
  retries: 0,
  timeout: 180_000,
  expect: { timeout: 60_000 },
  reporter: [['list']],
  use: {
    browserName: 'chromium',
    headless: true,
    viewport: { width: 1400, height: 1000 },
    actionTimeout: 30_000,
    navigationTimeout: 60_000,
    screenshot: 'only-on-failure',
    trace: 'off',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      // Without the networking flags Chromium keeps calling home (updates, sync, field
      // trials, QUIC probes), which on a closed network only slows every page down.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync'
      ]
    }
  }
});
