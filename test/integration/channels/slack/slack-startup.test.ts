import { afterEach, describe, expect, it } from 'vitest';
import type { SlackAdapter } from '../../../../src/channels/slack/slack-adapter.js';
import { type FakeSlack, startFakeSlack } from '../../../fakes/fake-slack.js';
import { eventually, newAdapter, recordingSink } from './slack-harness.js';

describe('Slack adapter: starting while Slack is down', () => {
  let fake: FakeSlack;
  let adapter: SlackAdapter;

  afterEach(async () => {
    await adapter?.stop();
    await fake?.close();
  });

  it('HTTP mode: start() resolves, health is disconnected, then connected once Slack is back', async () => {
    fake = await startFakeSlack();
    await fake.down();
    adapter = newAdapter(fake);
    await adapter.start(recordingSink(), []);
    expect(adapter.health().connected).toBe(false);
    expect(adapter.health().lastError).toBeDefined();

    await fake.up();
    await eventually(() => adapter.health().connected, 5_000, 'connected');
    expect(adapter.health().lastError).toBeUndefined();
    expect(fake.calls.filter((c) => c.method === 'auth.test')).toHaveLength(1);
  });

  it('Socket Mode: start() resolves, and the socket opens once Slack is back', async () => {
    fake = await startFakeSlack();
    await fake.down();
    adapter = newAdapter(fake, { mode: 'socket', appToken: fake.appToken, signingSecret: undefined });
    await adapter.start(recordingSink(), []);
    expect(adapter.health().connected).toBe(false);

    await fake.up();
    await eventually(() => adapter.health().connected, 5_000, 'connected');
    expect(fake.sockets).toBe(1);
  });

  it('stops retrying after stop()', async () => {
    fake = await startFakeSlack();
    await fake.down();
    adapter = newAdapter(fake);
    await adapter.start(recordingSink(), []);
    await adapter.stop();
    await fake.up();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fake.calls).toEqual([]);
  });

  it('throws at start when Slack refuses the token: configuration, not an outage', async () => {
    fake = await startFakeSlack();
    adapter = newAdapter(fake, { botToken: 'xoxb-revoked-token' });
    await expect(adapter.start(recordingSink(), [])).rejects.toThrow(/invalid_auth/);
  });

  it('throws at start when a bot token is given as the app token', async () => {
    fake = await startFakeSlack();
    adapter = newAdapter(fake, {
      mode: 'socket',
      appToken: `xapp-${fake.botToken}`,
      signingSecret: undefined,
    });
    await expect(adapter.start(recordingSink(), [])).rejects.toThrow(/invalid_auth/);
  });
});
