import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startFakeOpenAi } from '../fakes/fake-openai.js';
import { postMessage, startTestAgent } from '../support/test-agent.js';

describe('/metrics', () => {
  it('exposes provider, message and process metrics in Prometheus format', async () => {
    const primary = await startFakeOpenAi();
    const secondary = await startFakeOpenAi();
    const dir = mkdtempSync(join(tmpdir(), 'agent-metrics-'));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        providers: [
          {
            id: 'primary',
            kind: 'openai',
            baseURL: primary.baseURL,
            model: 'm1',
            price: { inputPerMTok: 1, outputPerMTok: 2 },
          },
          { id: 'secondary', kind: 'openai', baseURL: secondary.baseURL, model: 'm2' },
        ],
        gateway: { probeEveryMs: 600_000 },
      }),
    );
    const test = await startTestAgent({ AGENT_CONFIG: join(dir, 'config.json') });
    try {
      expect((await postMessage(test.url, 'm', { text: 'count me' })).status).toBe(200);
      primary.setFault({ kind: 'status', status: 500, times: 1 });
      expect((await postMessage(test.url, 'm', { text: 'fail over' })).body.reply.text).toBe(
        'echo: fail over',
      );

      const response = await fetch(`${test.url}/metrics`);
      expect(response.headers.get('content-type')).toContain('text/plain');
      const text = await response.text();
      expect(text).toMatch(/^agent_provider_requests_total\{provider="primary"\} 2$/m);
      expect(text).toMatch(/^agent_provider_requests_total\{provider="secondary"\} 1$/m);
      expect(text).toMatch(/^agent_provider_errors_total\{provider="primary",class="server_error"\} 1$/m);
      expect(text).toMatch(/^agent_provider_latency_seconds_count\{provider="primary"\} 1$/m);
      expect(text).toMatch(/^agent_provider_tokens_total\{provider="primary",direction="input"\} [1-9]\d*$/m);
      expect(text).toMatch(/^agent_provider_cost_usd_total\{provider="primary"\} 0\.0000\d+$/m);
      expect(text).toMatch(/^agent_messages_total\{channel="http",direction="in"\} 2$/m);
      expect(text).toMatch(/^agent_messages_total\{channel="http",direction="out"\} 2$/m);
      expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    } finally {
      await test.agent.stop();
      await primary.close();
      await secondary.close();
    }
  });
});
