import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { JobOutcome } from '../jobs/job-scheduler.js';
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
  private readonly walletTransfers: Counter<'outcome'>;
  private readonly forwards: GatewayObserver[] = [];

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
    this.walletTransfers = new Counter({
      name: 'agent_wallet_transfers_total',
      help: 'Wallet transfers reported by outcome: confirmed, finalized, failed.',
      labelNames: ['outcome'],
      registers,
    });
  }

  /**
   * Registers the gauges read from the agent's state at each scrape: queue depths, the leases this
   * node holds, Redis and the write-ahead log, the maintenance jobs. A source that cannot be read
   * now (Redis away) leaves its gauge out of that scrape rather than failing it.
   */
  observe(state: ObservedState): void {
    const registers = [this.registry];
    if (state.queues) {
      const queues = state.queues;
      new Gauge({
        name: 'agent_queue_depth',
        help: 'Jobs not yet finished in the inbox (platform events) and the outbox (replies).',
        labelNames: ['queue'],
        registers,
        async collect() {
          this.reset();
          const depth = await queues().catch(() => undefined);
          if (!depth) return;
          this.set({ queue: 'inbox' }, depth.inbox);
          this.set({ queue: 'outbox' }, depth.outbox);
        },
      });
    }
    if (state.leases) {
      const leases = state.leases;
      new Gauge({
        name: 'agent_lease_held',
        help: 'Per platform connection lease: 1 while this node holds it, else 0.',
        labelNames: ['lease'],
        registers,
        collect() {
          this.reset();
          for (const lease of leases()) this.set({ lease: lease.name }, lease.held ? 1 : 0);
        },
      });
    }
    if (state.redis) {
      const redis = state.redis;
      new Gauge({
        name: 'agent_redis_reachable',
        help: '1 while this node reaches Redis; 0 while it serves from its write-ahead log.',
        registers,
        collect() {
          this.set(redis().reachable ? 1 : 0);
        },
      });
      new Gauge({
        name: 'agent_write_ahead_pending',
        help: 'Writes in the local write-ahead log waiting to be replayed to Redis.',
        registers,
        collect() {
          this.set(redis().writeAheadPending);
        },
      });
    }
    const jobs = state.jobs;
    new Gauge({
      name: 'agent_job_runs',
      help: 'Finished runs of each maintenance job (cluster jobs: across every node).',
      labelNames: ['job'],
      registers,
      async collect() {
        this.reset();
        for (const job of (await jobs().catch(() => [])) ?? []) this.set({ job: job.name }, job.runs);
      },
    });
    new Gauge({
      name: 'agent_job_consecutive_failures',
      help: 'Failed runs in a row of each maintenance job (0 after a success).',
      labelNames: ['job'],
      registers,
      async collect() {
        this.reset();
        for (const job of (await jobs().catch(() => [])) ?? [])
          this.set({ job: job.name }, job.consecutiveFailures);
      },
    });
  }

  /** Also tells `observer` everything the gateway reports (the dashboard's usage history). */
  forwardTo(observer: GatewayObserver): void {
    this.forwards.push(observer);
  }

  onRequest(provider: string): void {
    this.providerRequests.inc({ provider });
    for (const o of this.forwards) o.onRequest(provider);
  }

  onError(provider: string, failureClass: string): void {
    this.providerErrors.inc({ provider, class: failureClass });
    for (const o of this.forwards) o.onError(provider, failureClass);
  }

  onLatency(provider: string, ms: number): void {
    this.providerLatency.observe({ provider }, ms / 1000);
    for (const o of this.forwards) o.onLatency(provider, ms);
  }

  onUsage(provider: string, usage: { inputTokens: number; outputTokens: number; usd: number }): void {
    this.providerTokens.inc({ provider, direction: 'input' }, usage.inputTokens);
    this.providerTokens.inc({ provider, direction: 'output' }, usage.outputTokens);
    this.providerCost.inc({ provider }, usage.usd);
    for (const o of this.forwards) o.onUsage(provider, usage);
  }

  onMessage(channel: string, direction: 'in' | 'out'): void {
    this.messages.inc({ channel, direction });
  }

  onDelivery(channel: string, outcome: 'sent' | 'resent' | 'failed_over' | 'retry' | 'lost'): void {
    this.deliveries.inc({ channel, outcome });
  }

  onWalletTransfer(outcome: string): void {
    this.walletTransfers.inc({ outcome });
  }
}

/** The agent's state the gauges read at each scrape. */
export interface ObservedState {
  queues?: () => Promise<{ inbox: number; outbox: number }>;
  leases?: () => { name: string; held: boolean }[];
  redis?: () => { reachable: boolean; writeAheadPending: number };
  jobs: () => Promise<JobOutcome[]>;
}
