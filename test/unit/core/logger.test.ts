import { describe, expect, it, vi } from 'vitest';
import { createLogger, lazyChild, secretScrubber } from '../../../src/core/logger.js';

describe('secret scrubbing', () => {
  it('cuts every configured secret out of a log line, JSON-escaped ones too, whatever field holds it', () => {
    const lines: string[] = [];
    const logger = createLogger({
      level: 'info',
      secrets: ['sk-plain-secret-1', 'pa"ss\\word-2', 'short'],
      destination: { write: (line: string) => lines.push(line) },
    });
    logger.info({ detail: { url: 'https://x/?key=sk-plain-secret-1' } }, 'failed with pa"ss\\word-2 (short)');
    const [line] = lines;
    expect(line).not.toContain('sk-plain-secret-1');
    expect(line).not.toContain(JSON.stringify('pa"ss\\word-2').slice(1, -1));
    expect(JSON.parse(line as string)).toMatchObject({
      msg: 'failed with [redacted] (short)',
      detail: { url: 'https://x/?key=[redacted]' },
    });
  });

  it('scrubs plain text the same way (alerts sent to chats), the longest secret first', () => {
    const scrub = secretScrubber(['abcdef', 'abcdefghij', 'tiny']);
    expect(scrub('token abcdefghij and abcdef, tiny stays')).toBe(
      'token [redacted] and [redacted], tiny stays',
    );
  });
});

describe('lazyChild', () => {
  function parentLogger(level: string) {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      level,
      secrets: ['sk-lazy-secret-1'],
      destination: { write: (line: string) => lines.push(JSON.parse(line)) },
    });
    return { logger, lines, childCalls: vi.spyOn(logger, 'child') };
  }

  it('writes with its own and its children’s bindings, redacted like any line', () => {
    const { logger, lines } = parentLogger('info');
    const request = lazyChild(logger, { reqId: 'r1' });
    request.child({ turn: 't1' }).warn({ key: 'sk-lazy-secret-1' }, 'slow');
    request.info('done');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ reqId: 'r1', turn: 't1', key: '[redacted]', msg: 'slow' });
    expect(lines[1]).toMatchObject({ reqId: 'r1', msg: 'done' });
    expect(lines[1]).not.toHaveProperty('turn');
  });

  it('builds no pino child while nothing is written at an enabled level', () => {
    const { logger, lines, childCalls } = parentLogger('warn');
    const request = lazyChild(logger, { reqId: 'r2' });
    const turn = request.child({ turn: 't2' });
    turn.debug('not written');
    turn.info('not written either');
    expect(childCalls).not.toHaveBeenCalled();
    expect(turn.isLevelEnabled('info')).toBe(false);
    expect(turn.bindings()).toMatchObject({ reqId: 'r2', turn: 't2' });
    turn.error('written');
    expect(childCalls).toHaveBeenCalledTimes(1);
    expect(lines).toEqual([expect.objectContaining({ reqId: 'r2', turn: 't2', msg: 'written' })]);
  });
});
