import { type Browser, chromium } from 'playwright-core';

/** Debian's chromium, which `npm test` installs; playwright-core downloads no browser. */
export const CHROMIUM = '/usr/bin/chromium';

/** Headless Chromium with nothing of its own reaching the network. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
