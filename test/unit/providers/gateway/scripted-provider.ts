import { AgentError } from '../../../../src/core/errors.js';
import type {
  CallOptions,
  ChatProvider,
  ChatRequest,
  ChatResult,
  ChatStreamEvent,
} from '../../../../src/providers/provider.js';

export type Step =
  | { ok: string; finishReason?: ChatResult['finishReason'] }
  | { fail: string; status?: number; retryAfterMs?: number }
  | { hang: true }
  | { streamThenFail: string[]; fail: string };

/**
 * A provider whose behaviour per call is scripted, for unit tests of routing decisions. The
 * wire formats and SDKs are covered by the integration tests against HTTP fakes.
 */
export class ScriptedProvider implements ChatProvider {
  readonly kind = 'openai' as const;
  readonly calls: ChatRequest[] = [];
  probes = 0;
  probeFails = false;
  private readonly script: Step[];

  constructor(
    readonly id: string,
    script: Step[] | Step,
    readonly model = `${id}-model`,
  ) {
    this.script = Array.isArray(script) ? [...script] : [script];
  }

  private next(): Step {
    return (this.script.length > 1 ? this.script.shift() : this.script[0]) as Step;
  }

  async complete(request: ChatRequest, options: CallOptions = {}): Promise<ChatResult> {
    this.calls.push(request);
    const step = this.next();
    if ('hang' in step) return hang(options.signal);
    if ('fail' in step) throw this.error(step);
    return {
      text: step.ok,
      providerId: this.id,
      model: this.model,
      finishReason: step.finishReason ?? 'stop',
      usage: { inputTokens: 10, outputTokens: 5 },
    };
  }

  async *stream(request: ChatRequest, options: CallOptions = {}): AsyncIterable<ChatStreamEvent> {
    this.calls.push(request);
    const step = this.next();
    if ('hang' in step) await hang(options.signal);
    if ('streamThenFail' in step) {
      for (const text of step.streamThenFail) yield { type: 'text', text };
      throw this.error(step);
    }
    if ('fail' in step) throw this.error(step);
    if ('ok' in step) {
      for (const piece of step.ok.match(/.{1,4}/gs) ?? []) yield { type: 'text', text: piece };
      yield {
        type: 'done',
        result: {
          text: step.ok,
          providerId: this.id,
          model: this.model,
          finishReason: step.finishReason ?? 'stop',
          usage: { inputTokens: 10, outputTokens: 5 },
        },
      };
    }
  }

  async probe(): Promise<void> {
    this.probes += 1;
    if (this.probeFails)
      throw new AgentError('provider_unavailable', 'probe failed', {
        details: { failure: 'server_error', status: 500 },
      });
  }

  private error(step: { fail: string; status?: number; retryAfterMs?: number }) {
    return new AgentError('provider_unavailable', `${this.id} ${step.fail}`, {
      details: {
        provider: this.id,
        failure: step.fail,
        status: step.status,
        retryAfterMs: step.retryAfterMs,
      },
    });
  }
}

function hang(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => {
    signal?.addEventListener(
      'abort',
      () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })),
      { once: true },
    );
  });
}
