import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { GatewayObserver } from '../providers/gateway/gateway-observer.js';

/**
 * The agent's Prometheus metrics, on a registry of its own (never prom-client's global one), so
 * two agents in one process keep separate numbers.
 */
export class AgentMetrics implements GatewayObserver {
  readonly registry = new Registry();
  private readonly providerRequests: Counter<'provider'>;
  private readonly providerErrors: Counter<'provider' | 'class'>;
  private readonly providerLatency: Histogram<'provider'>;
  private readonly providerTokens: Counter<'provider' | 'direction'>;
  private readonly providerCost: Counter<'provider'>;
  private readonly messages: Counter<'channel' | 'direction'>;
  private readonly deliveries: Counter<'channel' | 'outcome'>;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.providerRequests = new Counter({
      name: 'agent_provider_requests_total',
      help: 'Calls sent to each LLM provider, failovers and hedges included.',
      labelNames: ['provider'],
      registers,
    });
    this.providerErrors = new Counter({
      name: 'agent_provider_errors_total',
      help: 'Failed provider calls by failure class (rate_limited, server_error, timeout...).',
      labelNames: ['provider', 'class'],
      registers,
    });
    this.providerLatency = new Histogram({
      name: 'agent_provider_latency_seconds',
      help: 'Time to a complete answer (or to the first token of a stream).',
      labelNames: ['provider'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.providerTokens = new Counter({
      name: 'agent_provider_tokens_total',
      help: 'Tokens by provider and direction (input or output).',
      labelNames: ['provider', 'direction'],
      registers,
    });
    this.providerCost = new Counter({
      name: 'agent_provider_cost_usd_total',
      help: 'Cost in USD by provider, from the price table.',
      labelNames: ['provider'],
      registers,
    });
    this.messages = new Counter({
      name: 'agent_messages_total',
      help: 'Messages by channel: in (received) and out (answered).',
      labelNames: ['channel', 'direction'],
      registers,
    });
    this.deliveries = new Counter({
      name: 'agent_reply_deliveries_total',
      help: 'Outbox delivery attempts by the channel a reply was for: sent, resent (after a crash cut off an earlier delivery, so possibly twice), failed_over (delivered on another channel), retry, lost (gave up).',
      labelNames: ['channel', 'outcome'],
      registers,
    });
  }

  onRequest(provider: string): void {
    this.providerRequests.inc({ provider });
  }

  onError(provider: string, failureClass: string): void {
    this.providerErrors.inc({ provider, class: failureClass });
  }

  onLatency(provider: string, ms: number): void {
    this.providerLatency.observe({ provider }, ms / 1000);
  }

  onUsage(provider: string, usage: { inputTokens: number; outputTokens: number; usd: number }): void {
    this.providerTokens.inc({ provider, direction: 'input' }, usage.inputTokens);
    this.providerTokens.inc({ provider, direction: 'output' }, usage.outputTokens);
    this.providerCost.inc({ provider }, usage.usd);
  }

  onMessage(channel: string, direction: 'in' | 'out'): void {
    this.messages.inc({ channel, direction });
  }

  onDelivery(channel: string, outcome: 'sent' | 'resent' | 'failed_over' | 'retry' | 'lost'): void {
    this.deliveries.inc({ channel, outcome });
  }
}
