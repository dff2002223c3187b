/** What the gateway reports as it works: metrics implement this; the gateway knows no metrics library. */
export interface GatewayObserver {
  onRequest(provider: string): void;
  onError(provider: string, failureClass: string): void;
  onLatency(provider: string, ms: number): void;
  onUsage(provider: string, usage: { inputTokens: number; outputTokens: number; usd: number }): void;
}

export const silentObserver: GatewayObserver = {
  onRequest() {},
  onError() {},
  onLatency() {},
  onUsage() {},
};
