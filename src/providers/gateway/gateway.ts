import { CircuitState } from 'cockatiel';
import type { Logger } from 'pino';
import { estimateTokens } from '../../core/context-window.js';
import { AgentError } from '../../core/errors.js';
import { LinkedAbort } from '../../core/linked-abort.js';
import { type CostGuard, isBudgetExceededError, type Reservation } from '../budget/cost-guard.js';
import type {
  CallOptions,
  ChatProvider,
  ChatRequest,
  ChatResult,
  ChatStreamEvent,
  ToolCall,
} from '../provider.js';
import { continuationRequest, trimRequest } from './continuation.js';
import { failureOf } from './failure.js';
import { type GatewayObserver, silentObserver } from './gateway-observer.js';
import type { FailureClass, ProviderRoute } from './route.js';
import { type CallEstimate, estimatedCostUsd, orderRoutes, type RoutingStrategy } from './router.js';
import type { ProviderStateStore } from './shared-state.js';

export interface GatewayOptions {
  routes: ProviderRoute[];
  strategy: RoutingStrategy;
  /** Total time for one request, failovers included. */
  deadlineMs: number;
  /** One provider's share of the deadline before the gateway fails over. */
  attemptTimeoutMs: number;
  /** A stream that sends nothing for this long fails over. */
  firstTokenDeadlineMs: number;
  /** Send the same request to the next provider if the first has not answered after a delay. */
  hedge: { enabled: boolean; delayMs?: number };
  /** What a content refusal does: try the next provider, or return the refusal. */
  onRefusal: 'failover' | 'return';
  /** Cooldown after a 429 that names no retry time. */
  defaultCooldownMs: number;
  /** Output tokens assumed for budget estimates when a request sets no limit. */
  defaultMaxOutputTokens: number;
  state: ProviderStateStore;
  costGuard: CostGuard;
  logger: Logger;
  /** Told about every call, failure, latency and cost (metrics). */
  observer?: GatewayObserver;
  now?: () => number;
  random?: () => number;
}

interface RequestContext {
  request: ChatRequest;
  tried: Set<string>;
  /** Set after a context-length failure: only larger windows may try. */
  minContextWindow: number;
  trims: number;
  /** Set when a global or personal cap is reached: only free providers may answer. */
  freeOnly: boolean;
  failures: string[];
  lastError?: unknown;
  meta: CallOptions['meta'];
  /** The caller's, when it awaits the settling of costs itself (`CallOptions.settlements`). */
  settlements: Promise<void>[] | undefined;
  /** The caller's logger for this request (the turn's, carrying `turn`), else the gateway's. */
  logger: Logger;
}

const MAX_TRIMS = 3;

/**
 * The redundant provider gateway. It is itself a `ChatProvider`, so the core calls it like any
 * single provider, while it picks among the configured ones by health, budget, capability and
 * strategy, and fails over on every failure that another provider can fix.
 */
export class Gateway implements ChatProvider {
  readonly id = 'gateway';
  readonly kind = 'gateway' as const;
  readonly model = 'auto';
  private readonly now: () => number;
  private readonly observer: GatewayObserver;

  constructor(private readonly options: GatewayOptions) {
    this.now = options.now ?? Date.now;
    this.observer = options.observer ?? silentObserver;
    for (const route of options.routes) {
      // A failed half-open probe "breaks" again; say so once per outage, not once per probe.
      let open = false;
      route.breaker.onBreak(() => {
        if (open) {
          options.logger.debug(
            { provider: route.id, lastError: route.lastError },
            'provider probe failed; circuit stays open',
          );
        } else {
          options.logger.warn({ provider: route.id, lastError: route.lastError }, 'provider circuit opened');
        }
        open = true;
        void options.state.setOpen(route.id, true).catch(() => {});
      });
      route.breaker.onReset(() => {
        open = false;
        options.logger.info({ provider: route.id }, 'provider circuit closed after a successful probe');
        void options.state.setOpen(route.id, false).catch(() => {});
      });
    }
  }

  get routes(): readonly ProviderRoute[] {
    return this.options.routes;
  }

  async complete(request: ChatRequest, options: CallOptions = {}): Promise<ChatResult> {
    // No timer of its own for the whole deadline: each attempt's timer stops at it.
    const deadlineAt = this.now() + this.options.deadlineMs;
    const outer = options.signal;
    const ctx = this.context(request, options);
    for (;;) {
      const candidates = this.candidates(ctx, false);
      const [first, second] = candidates;
      if (!first) throw this.exhausted(ctx);
      try {
        const result =
          this.options.hedge.enabled && second
            ? await this.hedged(first, second, ctx, outer, deadlineAt)
            : await this.attemptOnce(first, ctx, outer, deadlineAt);
        if (result.finishReason === 'refusal' && this.refusalFailover(ctx, first)) continue;
        return result;
      } catch (error) {
        if (outer?.aborted || this.now() >= deadlineAt) throw this.deadlineError(outer, ctx, error);
      }
    }
  }

  async *stream(request: ChatRequest, options: CallOptions = {}): AsyncIterable<ChatStreamEvent> {
    const { deadline, deadlineAt } = this.deadline(options.signal);
    try {
      yield* this.streamWithin(request, options, deadline.signal, deadlineAt);
    } finally {
      deadline.dispose();
    }
  }

  private async *streamWithin(
    request: ChatRequest,
    options: CallOptions,
    signal: AbortSignal,
    deadlineAt: number,
  ): AsyncIterable<ChatStreamEvent> {
    const ctx = this.context(request, options);
    let text = '';
    const toolCalls: ToolCall[] = [];
    let inputTokens = 0;
    let outputTokens = 0;
    for (;;) {
      const [route] = this.candidates(ctx, true);
      if (!route) throw this.exhausted(ctx);
      ctx.tried.add(route.id);
      const request = text ? continuationRequest(ctx.request, text) : ctx.request;
      let sawOutput = false;
      try {
        for await (const event of this.attemptStream(route, request, ctx, signal, deadlineAt)) {
          if (event.type === 'text') {
            sawOutput = true;
            text += event.text;
            yield event;
          } else if (event.type === 'tool_call') {
            sawOutput = true;
            toolCalls.push(event.toolCall);
            yield event;
          } else {
            const result = event.result;
            if (result.finishReason === 'refusal' && !sawOutput && this.refusalFailover(ctx, route)) break;
            inputTokens += result.usage?.inputTokens ?? 0;
            outputTokens += result.usage?.outputTokens ?? 0;
            yield {
              type: 'done',
              result: {
                ...result,
                text,
                ...(toolCalls.length > 0 ? { toolCalls } : {}),
                usage: { inputTokens, outputTokens },
              },
            };
            return;
          }
        }
      } catch (error) {
        if (signal.aborted) throw this.deadlineError(options.signal, ctx, error);
        // Partial output stays shown; the next provider continues from it.
      }
    }
  }

  /** Probes every provider; resolves when at least one can take traffic afterwards. */
  async probe(options: CallOptions = {}): Promise<void> {
    await this.probeAll(options.signal);
    if (this.candidates(this.context({ messages: [] }, {}), false).length === 0) {
      throw new AgentError('provider_unavailable', 'no LLM provider is healthy');
    }
  }

  /** Probes every provider once; a success is what closes an open breaker. */
  async probeAll(signal?: AbortSignal): Promise<void> {
    await Promise.all(this.options.routes.map((route) => this.probeRoute(route, signal)));
  }

  async probeRoute(route: ProviderRoute, signal?: AbortSignal): Promise<void> {
    const shared = this.options.state.get(route.id);
    if (shared.disabled?.fingerprint === route.settings.fingerprint) return;
    const started = this.now();
    const timeout = new LinkedAbort([signal], this.options.attemptTimeoutMs);
    try {
      // Through the breaker: when it is open and due, this probe is its half-open trial.
      await route.breaker.execute(async () => {
        try {
          await route.provider.probe({ signal: timeout.signal });
        } catch (error) {
          throw this.normalize(route, error, timeout.signal, signal);
        }
      });
      route.latency.record(this.now() - started);
      if (shared.open) await this.options.state.setOpen(route.id, false);
    } catch (error) {
      if ((error as { name?: string }).name === 'BrokenCircuitError') return;
      route.recordError(this.now(), failureOf(error).failure, (error as Error).message);
    } finally {
      timeout.dispose();
    }
  }

  /** The live state of every provider, for `/status` and `/providers`. */
  snapshot(): ProviderSnapshot[] {
    const now = this.now();
    return this.options.routes.map((route) => {
      const shared = this.options.state.get(route.id);
      const disabled =
        shared.disabled?.fingerprint === route.settings.fingerprint ? shared.disabled.reason : undefined;
      return {
        id: route.id,
        kind: route.provider.kind,
        model: route.provider.model,
        breaker: breakerName(route.breaker.state, shared.open === true),
        ...(shared.cooldownUntil && shared.cooldownUntil > now
          ? { cooldownUntil: shared.cooldownUntil }
          : {}),
        ...(disabled ? { disabled } : {}),
        latencyMs: {
          ewma: round(route.latency.ewma),
          p50: round(route.latency.percentile(50)),
          p95: round(route.latency.percentile(95)),
        },
        requests: route.requests,
        errors: Object.fromEntries(route.errors),
        lastHour: route.lastHour(now),
        ...(route.lastError ? { lastError: route.lastError } : {}),
      };
    });
  }

  private recordLatency(route: ProviderRoute, ms: number): void {
    route.latency.record(ms);
    this.observer.onLatency(route.id, ms);
  }

  private context(request: ChatRequest, options: CallOptions): RequestContext {
    return {
      request,
      tried: new Set(),
      minContextWindow: 0,
      trims: 0,
      freeOnly: false,
      failures: [],
      meta: options.meta,
      settlements: options.settlements,
      logger: options.meta?.logger ?? this.options.logger,
    };
  }

  /** The whole request's deadline; the caller disposes of it when the request is over. */
  private deadline(outer: AbortSignal | undefined): { deadline: LinkedAbort; deadlineAt: number } {
    return {
      deadline: new LinkedAbort([outer], this.options.deadlineMs),
      deadlineAt: this.now() + this.options.deadlineMs,
    };
  }

  /** Eligible routes for this request, in the order they should be tried. */
  private candidates(ctx: RequestContext, streaming: boolean): ProviderRoute[] {
    const now = this.now();
    const estimate = this.estimate(ctx.request);
    const needTools = (ctx.request.tools?.length ?? 0) > 0;
    const eligible = this.options.routes.filter((route) => {
      if (ctx.tried.has(route.id)) return false;
      const shared = this.options.state.get(route.id);
      if (shared.disabled?.fingerprint === route.settings.fingerprint) return false;
      if (shared.cooldownUntil !== undefined && shared.cooldownUntil > now) return false;
      // Only probes may reach a provider whose breaker is not closed, here or on another node.
      if (route.breaker.state !== CircuitState.Closed || shared.open) return false;
      if (needTools && !route.settings.tools) return false;
      if (streaming && !route.settings.streaming) return false;
      if (route.settings.contextWindow < Math.max(ctx.minContextWindow, estimate.inputTokens)) return false;
      if (ctx.freeOnly && estimatedCostUsd(route, estimate) !== 0) return false;
      return true;
    });
    // Once a cap is hit, the cheapest remaining provider is the right next one.
    const strategy = ctx.freeOnly ? 'cost' : this.options.strategy;
    return orderRoutes(eligible, strategy, estimate, this.options.random);
  }

  private estimate(request: ChatRequest): CallEstimate {
    let inputTokens = request.system ? estimateTokens(request.system) : 0;
    for (const m of request.messages) inputTokens += estimateTokens(m.content);
    return { inputTokens, outputTokens: request.maxOutputTokens ?? this.options.defaultMaxOutputTokens };
  }

  private async attemptOnce(
    route: ProviderRoute,
    ctx: RequestContext,
    outer: AbortSignal | undefined,
    deadlineAt: number,
  ): Promise<ChatResult> {
    ctx.tried.add(route.id);
    const reservation = await this.reserve(route, ctx);
    if (!reservation) throw new Error('budget');
    const attempt = new LinkedAbort(
      [outer],
      Math.max(1, Math.min(this.options.attemptTimeoutMs, deadlineAt - this.now())),
    );
    const started = this.now();
    route.recordRequest(started);
    this.observer.onRequest(route.id);
    try {
      const result = await route.breaker.execute(async () => {
        try {
          return await route.provider.complete(ctx.request, {
            signal: attempt.signal,
            ...(ctx.meta ? { meta: ctx.meta } : {}),
          });
        } catch (error) {
          throw this.normalize(route, error, attempt.signal, outer);
        }
      });
      this.recordLatency(route, this.now() - started);
      ctx.logger.debug({ provider: route.id, ms: this.now() - started }, 'provider answered');
      await this.settleOrDefer(ctx, this.settle(reservation, route, ctx.request, result, ctx.logger));
      return result;
    } catch (error) {
      await this.options.costGuard.release(reservation).catch(() => {});
      this.onFailure(route, error, ctx);
      throw error;
    } finally {
      attempt.dispose();
    }
  }

  /**
   * Starts the first route; if it has not answered after the hedge delay (default: its observed
   * p95), starts the second too. The first answer wins and the other call is cancelled.
   */
  private async hedged(
    first: ProviderRoute,
    second: ProviderRoute,
    ctx: RequestContext,
    outer: AbortSignal | undefined,
    deadlineAt: number,
  ): Promise<ChatResult> {
    const delay =
      this.options.hedge.delayMs ?? first.latency.percentile(95) ?? this.options.attemptTimeoutMs / 2;
    const cancelFirst = new LinkedAbort([outer]);
    const cancelSecond = new LinkedAbort([outer]);
    const primary = this.attemptOnce(first, ctx, cancelFirst.signal, deadlineAt);
    void primary.finally(() => cancelFirst.dispose()).catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    const hedgeDue = new Promise<'hedge'>((resolve) => {
      timer = setTimeout(() => resolve('hedge'), delay);
    });
    const early = await Promise.race([
      primary.then(
        () => 'done' as const,
        () => 'failed' as const,
      ),
      hedgeDue,
    ]);
    clearTimeout(timer);
    if (early !== 'hedge') {
      cancelSecond.dispose();
      return primary;
    }
    const backup = this.attemptOnce(second, ctx, cancelSecond.signal, deadlineAt);
    void backup.finally(() => cancelSecond.dispose()).catch(() => {});
    try {
      const result = await Promise.any([
        primary.then((r) => ({ r, from: 'primary' as const })),
        backup.then((r) => ({ r, from: 'backup' as const })),
      ]);
      (result.from === 'primary' ? cancelSecond : cancelFirst).abort();
      return result.r;
    } catch (error) {
      throw (error as AggregateError).errors?.at(-1) ?? error;
    }
  }

  private async *attemptStream(
    route: ProviderRoute,
    request: ChatRequest,
    ctx: RequestContext,
    outer: AbortSignal,
    deadlineAt: number,
  ): AsyncIterable<ChatStreamEvent> {
    const reservation = await this.reserve(route, ctx);
    if (!reservation) throw new Error('budget');
    const remaining = Math.max(1, deadlineAt - this.now());
    // Armed until the first event, then re-armed after each one: a stream that stalls fails over.
    const attempt = new LinkedAbort([outer], Math.min(this.options.firstTokenDeadlineMs, remaining));
    const started = this.now();
    route.recordRequest(started);
    this.observer.onRequest(route.id);
    // The breaker judges the whole stream: it settles when the stream ends or fails.
    let settleOutcome!: (error?: unknown) => void;
    const outcome = new Promise<void>((resolve, reject) => {
      settleOutcome = (error) => (error === undefined ? resolve() : reject(error));
    });
    const judged = route.breaker.execute(() => outcome).catch(() => {});
    let first = true;
    /** Set once the reservation is settled or released, so it is never left held. */
    let accounted = false;
    try {
      for await (const event of route.provider.stream(request, {
        signal: attempt.signal,
        ...(ctx.meta ? { meta: ctx.meta } : {}),
      })) {
        if (first) {
          first = false;
          this.recordLatency(route, this.now() - started);
        }
        attempt.restartTimer(this.options.firstTokenDeadlineMs);
        if (event.type === 'done') {
          // Settle before passing `done` on: the consumer stops iterating at `done`, so code
          // after this loop never runs for a stream that finished.
          settleOutcome();
          accounted = true;
          ctx.logger.debug({ provider: route.id, ms: this.now() - started }, 'provider answered');
          await this.settleOrDefer(ctx, this.settle(reservation, route, request, event.result, ctx.logger));
        }
        yield event;
      }
      settleOutcome();
    } catch (error) {
      const normalized = this.normalize(route, error, attempt.signal, outer);
      settleOutcome(normalized);
      if (!accounted) {
        accounted = true;
        await this.options.costGuard.release(reservation).catch(() => {});
      }
      this.onFailure(route, normalized, ctx);
      throw normalized;
    } finally {
      attempt.dispose();
      // A consumer that stops early (the person left) is not the provider's fault.
      settleOutcome();
      if (!accounted) await this.options.costGuard.release(reservation).catch(() => {});
      await judged;
    }
  }

  private async reserve(route: ProviderRoute, ctx: RequestContext): Promise<Reservation | undefined> {
    const estimate = this.estimate(ctx.request);
    const cost = estimatedCostUsd(route, estimate);
    try {
      return await this.options.costGuard.reserve({
        providerId: route.id,
        model: route.provider.model,
        estimatedUsd: Number.isFinite(cost) ? cost : 0,
        ...(ctx.meta?.personId ? { personId: ctx.meta.personId } : {}),
        ...(ctx.meta?.channel ? { channel: ctx.meta.channel } : {}),
      });
    } catch (error) {
      if (!isBudgetExceededError(error)) throw error;
      ctx.failures.push(`${route.id}: ${error.message}`);
      ctx.lastError = new AgentError('budget_exceeded', error.message, { details: { scope: error.scope } });
      if (error.scope !== 'provider') ctx.freeOnly = true;
      return undefined;
    }
  }

  /** Waits for a settle, or hands it to the caller that asked to await it itself. */
  private async settleOrDefer(ctx: RequestContext, settling: Promise<void>): Promise<void> {
    if (ctx.settlements) ctx.settlements.push(settling);
    else await settling;
  }

  private async settle(
    reservation: Reservation,
    route: ProviderRoute,
    request: ChatRequest,
    result: ChatResult,
    logger: Logger,
  ) {
    const inputTokens = result.usage?.inputTokens ?? this.estimate(request).inputTokens;
    const outputTokens = result.usage?.outputTokens ?? estimateTokens(result.text);
    const price = route.settings.price;
    const usd = price
      ? (inputTokens * price.inputPerMTok + outputTokens * price.outputPerMTok) / 1_000_000
      : 0;
    this.observer.onUsage(route.id, { inputTokens, outputTokens, usd });
    await this.options.costGuard
      .settle(reservation, { usd, inputTokens, outputTokens })
      .catch((error: unknown) => {
        logger.error({ err: error, provider: route.id }, 'could not settle a cost reservation');
      });
  }

  /** Turns an abort into the failure it stands for: this attempt's timeout, or the caller leaving. */
  private normalize(
    route: ProviderRoute,
    error: unknown,
    attemptSignal: AbortSignal,
    outer?: AbortSignal,
  ): unknown {
    const { failure } = failureOf(error);
    if (failure !== 'aborted' && failure !== 'unknown') return error;
    if (attemptSignal.aborted && !outer?.aborted) {
      return new AgentError('provider_unavailable', `provider "${route.id}" did not answer in time`, {
        cause: error,
        details: { provider: route.id, failure: 'timeout' },
      });
    }
    if (outer?.aborted) {
      return new AgentError('provider_unavailable', `call to provider "${route.id}" was cancelled`, {
        cause: error,
        details: { provider: route.id, failure: 'aborted' },
      });
    }
    return error;
  }

  private onFailure(route: ProviderRoute, error: unknown, ctx: RequestContext): void {
    const { failure, status, retryAfterMs } = failureOf(error);
    if ((error as { name?: string }).name === 'BrokenCircuitError' || failure === 'aborted') return;
    const message = (error as Error).message;
    route.recordError(this.now(), failure, message);
    this.observer.onError(route.id, failure);
    ctx.lastError = error;
    ctx.failures.push(`${route.id}: ${failure}${status ? ` (HTTP ${status})` : ''}`);
    const log = { provider: route.id, failure, status };
    const { logger } = ctx;
    switch (failure as FailureClass) {
      case 'rate_limited': {
        const until = this.now() + (retryAfterMs ?? this.options.defaultCooldownMs);
        logger.warn(
          { ...log, cooldownUntil: new Date(until).toISOString() },
          'provider rate-limited; cooling down',
        );
        void this.options.state.setCooldown(route.id, until).catch(() => {});
        break;
      }
      case 'unauthorized':
        logger.error(log, 'provider refused its key; disabled until its configuration changes');
        void this.options.state
          .setDisabled(route.id, {
            fingerprint: route.settings.fingerprint,
            reason: `key refused (HTTP ${status ?? '?'})`,
          })
          .catch(() => {});
        break;
      case 'context_too_long':
        ctx.minContextWindow = route.settings.contextWindow + 1;
        if (this.candidates(ctx, false).length === 0 && ctx.trims < MAX_TRIMS) {
          const trimmed = trimRequest(ctx.request);
          if (trimmed) {
            ctx.trims += 1;
            ctx.request = trimmed;
            ctx.minContextWindow = 0;
            ctx.tried.clear();
            logger.warn(log, 'prompt too long for every provider; trimmed the oldest history');
          }
        }
        break;
      default:
        logger.warn({ ...log, err: message }, 'provider call failed; failing over');
    }
  }

  private refusalFailover(ctx: RequestContext, route: ProviderRoute): boolean {
    if (this.options.onRefusal !== 'failover') return false;
    route.recordError(this.now(), 'refusal', 'content refusal');
    ctx.failures.push(`${route.id}: refusal`);
    return this.candidates(ctx, false).length > 0;
  }

  private exhausted(ctx: RequestContext): AgentError {
    if (ctx.freeOnly && ctx.lastError instanceof AgentError && ctx.lastError.code === 'budget_exceeded') {
      return ctx.lastError;
    }
    const tried = ctx.failures.length > 0 ? ` (${ctx.failures.join('; ')})` : '';
    return new AgentError(
      'provider_unavailable',
      `no LLM provider could answer${tried}; please try again shortly`,
      {
        ...(ctx.lastError ? { cause: ctx.lastError } : {}),
      },
    );
  }

  private deadlineError(outer: AbortSignal | undefined, ctx: RequestContext, error: unknown): unknown {
    if (outer?.aborted) return error;
    return new AgentError(
      'provider_unavailable',
      `no LLM provider answered within ${this.options.deadlineMs} ms${ctx.failures.length ? ` (${ctx.failures.join('; ')})` : ''}`,
      { cause: error },
    );
  }
}

export interface ProviderSnapshot {
  id: string;
  kind: string;
  model: string;
  breaker: 'closed' | 'open' | 'half-open' | 'isolated' | 'open elsewhere';
  cooldownUntil?: number;
  disabled?: string;
  latencyMs: { ewma?: number; p50?: number; p95?: number };
  requests: number;
  errors: Record<string, number>;
  lastHour: { requests: number; errors: number };
  lastError?: { at: number; failure: string; message: string };
}

function breakerName(state: CircuitState, openElsewhere: boolean): ProviderSnapshot['breaker'] {
  if (state === CircuitState.Open) return 'open';
  if (state === CircuitState.HalfOpen) return 'half-open';
  if (state === CircuitState.Isolated) return 'isolated';
  return openElsewhere ? 'open elsewhere' : 'closed';
}

function round(value: number | undefined): number | undefined {
  return value === undefined ? undefined : Math.round(value * 10) / 10;
}
