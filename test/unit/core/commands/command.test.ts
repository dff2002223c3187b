import { describe, expect, it } from 'vitest';
import { createBuiltinCommands, formatUptime } from '../../../../src/core/commands/builtin-commands.js';
import { parseCommand } from '../../../../src/core/commands/command.js';

describe('parseCommand', () => {
  it.each([
    ['/help', { name: 'help', args: [] }],
    ['  /Status  ', { name: 'status', args: [] }],
    ['/wallet send 1.5 SOL abc', { name: 'wallet', args: ['send', '1.5', 'SOL', 'abc'] }],
    ['/reset@my_bot', { name: 'reset', args: [] }],
  ])('parses %j', (text, expected) => {
    expect(parseCommand(text)).toEqual(expected);
  });

  it.each(['hello /help', '/', '// comment', 'just text'])('leaves %j to the agent', (text) => {
    expect(parseCommand(text)).toBeUndefined();
  });
});

describe('builtin commands', () => {
  const commands = createBuiltinCommands({
    status: () => ({
      agentName: 'agent',
      version: '1.2.3',
      uptimeSeconds: 3725,
      providers: [
        { id: 'openai', model: 'gpt-4o-mini', state: 'healthy' },
        { id: 'anthropic', model: 'claude-x', state: 'circuit open' },
      ],
      memoryBackend: 'redis',
      channels: [],
    }),
    providersReport: async () => 'report',
  });
  const run = (name: string) =>
    commands.find((c) => c.name === name)?.run({ personId: 'p', channel: 'http', userId: 'u', args: [] });

  it('/help lists every command', async () => {
    const text = (await run('help'))?.text ?? '';
    for (const c of commands) expect(text).toContain(`/${c.name}`);
  });

  it('/status shows provider, memory backend, uptime and version', async () => {
    const text = (await run('status'))?.text ?? '';
    expect(text).toContain('openai (gpt-4o-mini) healthy; anthropic (claude-x) circuit open');
    expect(text).toContain('Redis');
    expect(text).toContain('1h 2m 5s');
    expect(text).toContain('v1.2.3');
  });

  it('/reset asks for a fresh context', async () => {
    expect(await run('reset')).toMatchObject({ resetContext: true });
  });

  it('formats uptime', () => {
    expect(formatUptime(0)).toBe('0s');
    expect(formatUptime(90_061)).toBe('1d 1h 1m 1s');
  });
});
