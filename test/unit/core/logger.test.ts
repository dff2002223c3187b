import { describe, expect, it } from 'vitest';
import { createLogger, secretScrubber } from '../../../src/core/logger.js';

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
