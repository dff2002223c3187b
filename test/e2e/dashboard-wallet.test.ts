import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Wallet } from '../../src/wallet/create-wallet.js';
import { launchChromium } from '../support/chromium.js';
import { startWalletAgent, type WalletAgent } from '../support/wallet-agent.js';
import { OWNER_TOKEN, startWalletWorld, type WalletWorld } from '../support/wallet-world.js';

/**
 * The status page's wallet section in a real (headless) Chromium, against an agent whose wallet
 * runs on the local Solana runtime: the address, balances, the transfer waiting for approval and
 * the 24-hour spend against the caps, followed live as transfers are made.
 */

let browser: Browser;
let world: WalletWorld;
let running: WalletAgent;
let wallet: Wallet;

beforeAll(async () => {
  browser = await launchChromium();
  world = await startWalletWorld();
  running = await startWalletAgent(world);
  if (!running.agent.wallet) throw new Error('the wallet is not enabled');
  wallet = running.agent.wallet;
});

afterAll(async () => {
  await browser?.close();
  await running?.agent.stop();
  await world?.close();
});

/** The cells of a token's row in the spend table: token, spent, cap, autonomous spent, autonomous cap. */
const spendRow = (page: Page, token: string): Locator =>
  page
    .locator('#wallet-spend tbody tr')
    .filter({ has: page.locator('td:first-child', { hasText: new RegExp(`^${token}$`) }) });

const cells = (row: Locator) => row.locator('td').allTextContents();

describe('the wallet on the status dashboard in Chromium', () => {
  it('shows the address, balances, pending approvals and the 24 h spend, and follows a transfer', async () => {
    const friend = world.friend.publicKey.toBase58();
    const address = world.wallet.publicKey.toBase58();
    // The model proposes more than it may send on its own: the transfer waits for an owner.
    const proposal = await wallet.service.request({
      requester: { personId: 'owner', channel: 'http', userId: 'owner' },
      requesterIsOwner: true,
      origin: 'model',
      token: 'SOL',
      amount: '0.5',
      recipient: friend,
    });
    expect(proposal.status).toBe('pending_approval');

    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.goto(`${running.url}/dashboard`);
      await page.locator('#token-panel').waitFor({ state: 'visible' });
      await page.fill('#token', OWNER_TOKEN);
      await page.click('#save-token');
      await page.locator('#wallet-section').waitFor({ state: 'visible' });

      // Address and balances.
      const summary = page.locator('#wallet');
      await expect.poll(() => summary.textContent(), { timeout: 10_000 }).toContain(`Address${address}`);
      expect(await summary.textContent()).toContain('Balances10 SOL, 1000 USDC');

      // The pending approval: one row, with its id, amount and recipient.
      const pendingRows = page.locator('#wallet-pending tbody tr');
      expect(await pendingRows.count()).toBe(1);
      const pending = await cells(pendingRows.first());
      expect(pending.slice(0, 3)).toEqual([proposal.id, '0.5 SOL', friend]);
      expect(pending[3]).toMatch(/^in /);

      // Nothing spent yet, against the configured caps (a pending approval spends nothing).
      expect(await cells(spendRow(page, 'SOL'))).toEqual(['SOL', '0', '2', '0', '0.03']);
      expect(await cells(spendRow(page, 'USDC'))).toEqual(['USDC', '0', '250', '0', '10']);

      // The owner sends 0.25 SOL: the page shows it spent without a reload.
      expect(await running.say('owner', `/wallet send 0.25 SOL ${friend}`)).toMatch(/confirmed|finalized/);
      await expect
        .poll(async () => (await cells(spendRow(page, 'SOL')))[1], { timeout: 10_000 })
        .toBe('0.25');
      expect((await cells(spendRow(page, 'SOL')))[3]).toBe('0');

      // The approval: the pending list empties and the spend grows by its amount.
      expect(await running.say('owner', `/wallet approve ${proposal.id}`)).toMatch(/confirmed|finalized/);
      await expect
        .poll(async () => (await cells(spendRow(page, 'SOL')))[1], { timeout: 10_000 })
        .toBe('0.75');
      await expect
        .poll(() => pendingRows.first().textContent(), { timeout: 10_000 })
        .toBe('No transfer waits for approval.');
      // The balance is read at most every 10 s: it follows, less the transfers and their fees.
      await expect
        .poll(async () => /Balances([\d.]+) SOL/.exec((await summary.textContent()) ?? '')?.[1], {
          timeout: 20_000,
        })
        .toMatch(/^9\.2499/);

      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
