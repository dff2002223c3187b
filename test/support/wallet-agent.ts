import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { loadConfig } from '../../src/core/config/load-config.js';
import { type Agent, createAgent } from '../../src/core/create-agent.js';
import { postMessage } from './test-agent.js';
import { OWNER_TOKEN, type WalletWorld } from './wallet-world.js';

export interface WalletAgent {
  agent: Agent;
  url: string;
  /** Posts `text` as conversation `who` (the HTTP account `http:<who>`); resolves with the reply text. */
  say(who: string, text: string): Promise<string>;
}

/**
 * An agent on the world's config; `now` lets a test move its clock (approval expiry, caps' 24 hours),
 * and `logger` lets it read what the agent logs.
 */
export async function startWalletAgent(
  world: WalletWorld,
  options: { env?: Record<string, string>; now?: () => number; logger?: Logger } = {},
): Promise<WalletAgent> {
  const config = loadConfig({
    env: { HTTP_PORT: '0', LOCAL_LLM_PROBE: 'false', LOG_LEVEL: 'silent', ...world.env, ...options.env },
    cwd: world.dataDir,
  });
  const agent = await createAgent(config, {
    ...(options.now ? { now: options.now } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const url = await agent.start();
  return {
    agent,
    url,
    async say(who, text) {
      const reply = await postMessage(
        url,
        who,
        { text, eventId: randomUUID() },
        { authorization: `Bearer ${OWNER_TOKEN}` },
      );
      if (reply.status !== 200) throw new Error(`HTTP ${reply.status}: ${JSON.stringify(reply.body)}`);
      return reply.body.reply.text as string;
    },
  };
}
