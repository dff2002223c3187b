import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeOpenAi } from '../../fakes/fake-openai.js';
import { startFakeTelegram } from '../../fakes/fake-telegram.js';
import { startFakeVault } from '../../fakes/fake-vault.js';
import { startAgentProcess } from '../../support/agent-process.js';
import { until } from '../../support/until.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Rewrites a secret file the way a secret manager does: a new file renamed over the old one. */
function rewrite(path: string, value: string): void {
  writeFileSync(`${path}.tmp`, `${value}\n`, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

async function ask(url: string, token: string, text: string): Promise<Response> {
  return fetch(`${url}/api/conversations/rotation/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ text }),
  });
}

/** The reply's text, or the error's code. */
async function replyText(response: Response): Promise<string> {
  const body = (await response.json()) as { reply?: { text: string }; error?: { code: string } };
  return body.reply?.text ?? `error ${body.error?.code}`;
}

describe('secrets rotated in NAME_FILE files, taken by the running agent', () => {
  it('switches API tokens and the provider key without a restart, and logs neither', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-rotation-'));
    const tokensFile = join(dir, 'http-tokens');
    const keyFile = join(dir, 'openai-key');
    const [TOKEN_V1, TOKEN_V2] = ['api-token-one-0123456789', 'api-token-two-0123456789'];
    const [KEY_V1, KEY_V2] = ['sk-file-key-one-0123456789', 'sk-file-key-two-0123456789'];
    rewrite(tokensFile, TOKEN_V1);
    rewrite(keyFile, KEY_V1);
    const openai = await startFakeOpenAi();
    cleanups.push(() => openai.close());
    const agent = await startAgentProcess({
      DATA_DIR: join(dir, 'data'),
      HTTP_AUTH_TOKENS_FILE: tokensFile,
      OPENAI_API_KEY_FILE: keyFile,
      OPENAI_BASE_URL: openai.baseURL,
      OPENAI_MODEL: 'fake-model',
      SECRET_FILES_REFRESH_MS: '200',
      LOG_LEVEL: 'debug',
    });
    cleanups.push(async () => {
      agent.child.kill('SIGKILL');
      await agent.exited;
    });

    expect((await ask(agent.url, TOKEN_V1, 'before')).status).toBe(200);
    expect(openai.requests.at(-1)?.headers.authorization).toBe(`Bearer ${KEY_V1}`);
    expect((await ask(agent.url, TOKEN_V2, 'not yet')).status).toBe(401);

    // The provider revokes the key: it is disabled until its key changes.
    openai.setFault({ kind: 'status', status: 401 });
    await ask(agent.url, TOKEN_V1, 'refused');
    openai.setFault(undefined);
    const hits = openai.chatHits;
    expect(await replyText(await ask(agent.url, TOKEN_V1, 'disabled'))).toBe('error provider_unavailable');
    expect(openai.chatHits).toBe(hits);

    // Step one of a token rotation: both tokens; then the old one is dropped. The new key brings
    // the provider back.
    rewrite(tokensFile, `${TOKEN_V1},${TOKEN_V2}`);
    rewrite(keyFile, KEY_V2);
    await until(
      async () => (await ask(agent.url, TOKEN_V2, 'both')).status === 200,
      10_000,
      'new token accepted',
    );
    expect(await replyText(await ask(agent.url, TOKEN_V1, 'old still'))).toBe('echo: old still');
    expect(openai.requests.at(-1)?.headers.authorization).toBe(`Bearer ${KEY_V2}`);

    rewrite(tokensFile, TOKEN_V2);
    await until(
      async () => (await ask(agent.url, TOKEN_V1, 'old')).status === 401,
      10_000,
      'old token refused',
    );
    const refused = await ask(agent.url, TOKEN_V1, 'old');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    expect((await ask(agent.url, TOKEN_V2, 'after')).status).toBe(200);

    // An emptied file would open the API: refused, and the token in use stays.
    rewrite(tokensFile, '');
    await until(
      () => agent.output.some((line) => line.includes('a rotated secret was not taken')),
      10_000,
      'the empty token list refused',
    );
    expect((await ask(agent.url, TOKEN_V2, 'still')).status).toBe(200);
    expect((await fetch(`${agent.url}/api/status`)).status).toBe(401);

    const log = agent.output.join('\n');
    expect(log).toContain('rotated secrets taken without a restart');
    for (const secret of [TOKEN_V1, TOKEN_V2, KEY_V1, KEY_V2]) expect(log).not.toContain(secret);
  });
});

describe('a platform token rotated in Vault, taken by the running agent', () => {
  it('polls and replies on Telegram with the new token once the old one is revoked', async () => {
    const [TG_V1, TG_V2] = [
      '123456789:AAOldTokenForRotation_abcdefghij',
      '123456789:AANewTokenForRotation_abcdefghij',
    ];
    const VAULT_TOKEN = 'vault-token-for-rotation';
    const vault = await startFakeVault({ tokens: [VAULT_TOKEN] });
    cleanups.push(() => vault.close());
    vault.put('secret', 'agent/prod', { TELEGRAM_BOT_TOKEN: TG_V1 });
    const telegram = await startFakeTelegram({ token: TG_V1 });
    cleanups.push(() => telegram.close());
    const openai = await startFakeOpenAi();
    cleanups.push(() => openai.close());
    const agent = await startAgentProcess({
      DATA_DIR: mkdtempSync(join(tmpdir(), 'agent-rotation-tg-')),
      VAULT_ADDR: vault.addr,
      VAULT_TOKEN,
      VAULT_SECRET_PATH: 'agent/prod',
      VAULT_REFRESH_MS: '200',
      TELEGRAM_API_ROOT: telegram.url,
      OPENAI_API_KEY: 'sk-telegram-rotation-0123456789',
      OPENAI_BASE_URL: openai.baseURL,
      OPENAI_MODEL: 'fake-model',
    });
    cleanups.push(async () => {
      agent.child.kill('SIGKILL');
      await agent.exited;
    });

    telegram.pushText(501, 501, 'before the rotation');
    await until(
      () => telegram.sent.some((m) => m.text === 'echo: before the rotation'),
      10_000,
      'first reply',
    );

    // At @BotFather: a new token, the old one revoked; then the new one is put into Vault.
    telegram.setTokens([TG_V2]);
    vault.rotate('secret', 'agent/prod', 'TELEGRAM_BOT_TOKEN', TG_V2);
    telegram.pushText(501, 501, 'after the rotation');
    await until(
      () => telegram.sent.some((m) => m.text === 'echo: after the rotation'),
      15_000,
      'reply after',
    );

    const replies = telegram.sent.filter((m) => m.chatId === 501).map((m) => m.text);
    expect(replies).toEqual(['echo: before the rotation', 'echo: after the rotation']);
    const sendCalls = telegram.calls.filter((c) => c.method === 'sendMessage' && c.status === 200);
    expect(sendCalls.at(-1)?.token).toBe(TG_V2);
    const log = agent.output.join('\n');
    expect(log).toContain('channels.telegram.botToken');
    expect(log).not.toContain(TG_V1);
    expect(log).not.toContain(TG_V2);
  });
});
