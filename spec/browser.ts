/**
 * Headless Chromium for the browser tests (Debian's `chromium` driven by playwright-core, as
 * spec/analysisPage.test.ts): one launch per test file, every page's console errors and
 * uncaught exceptions collected. Without /usr/bin/chromium the tests that need it are skipped.
 */
import * as fs from 'node:fs';
import type { Browser, Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const HAS_CHROMIUM = fs.existsSync(CHROMIUM);

export function warnIfNoChromium(file: string): void {
  if (!HAS_CHROMIUM) console.warn(`${file}: ${CHROMIUM} is absent, so its headless-browser tests are SKIPPED (apt-get update && apt-get install -y chromium)`);
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** A new page whose console errors, uncaught exceptions and failed requests land in `errors`. */
export async function watchedPage(browser: Browser): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('requestfailed', (rq) => errors.push(`failed to load ${rq.url()}`));
  return { page, errors };
}
