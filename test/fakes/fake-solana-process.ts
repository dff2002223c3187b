/**
 * The fake Solana (test/fakes/fake-solana.ts) in a process of its own, driven over IPC by
 * `startSolanaProcess` (test/fakes/fake-solana-remote.ts). Once LiteSVM has run BPF programs it can
 * abort the process that loaded it (`std::bad_alloc`, see fake-solana-remote.ts), so it must never
 * live in a test worker. This process never exits normally: when its parent goes away it kills
 * itself with SIGKILL, which also skips the exit path, where the abort was seen most.
 *
 * Started with an IPC channel and its `FakeSolanaOptions` (hooks aside) as JSON in argv[2]. It
 * sends `SolanaReady` once listening, then answers each `SolanaRequest` with a `SolanaResponse`
 * carrying the same `id`. Keys travel as base58, bigints as decimal strings.
 *
 * Each sendTransaction request is announced to the parent with a `SolanaSendEvent`, before the fake
 * applies it ('before') and after it landed ('after'), and the fake goes on only once the parent
 * has answered with a `SolanaSendAck`: the parent can act (kill a client) at exactly that point.
 * `sendMode` decides what the next requests do (see `SendMode`).
 */
import { PublicKey } from '@solana/web3.js';
import { type FakeSolanaOptions, startFakeSolana } from './fake-solana.js';

export type FakeSolanaProcessOptions = Omit<FakeSolanaOptions, 'onSendTransaction' | 'afterApply'>;

/**
 * What the next `times` sendTransaction requests do (all of them until changed when `times` is
 * left out; `{}` restores the default). `before: 'drop'`: not applied, the connection destroyed
 * without an answer. `after: 'drop'`: applied, then the connection destroyed without an answer.
 */
export interface SendMode {
  before?: 'apply' | 'drop';
  after?: 'answer' | 'drop';
  times?: number;
}

export type SendPhase = 'before' | 'after';

export interface SolanaMethods {
  height(): number;
  advance(n: number): void;
  outage(on: boolean): void;
  fund(pubkey: string, lamports: string): void;
  createMint(decimals: number): string;
  mintTo(mint: string, owner: string, amount: string): string;
  balance(pubkey: string): string;
  tokenBalance(mint: string, owner: string): string;
  landed(): string[];
  sent(): number;
  requests(): Record<string, number>;
  sendMode(mode: SendMode): void;
}

export type SolanaMethod = keyof SolanaMethods;

export interface SolanaReady {
  type: 'ready';
  url: string;
}
export interface SolanaSendEvent {
  type: 'send';
  /** Numbers the events, for the acknowledgement. */
  event: number;
  phase: SendPhase;
  signature: string;
}
export type SolanaChildMessage = SolanaReady | SolanaSendEvent | SolanaResponse;

export interface SolanaRequest<M extends SolanaMethod = SolanaMethod> {
  id: number;
  method: M;
  args: Parameters<SolanaMethods[M]>;
}
export interface SolanaSendAck {
  type: 'ack';
  event: number;
}
export type SolanaParentMessage = SolanaRequest | SolanaSendAck;

/** `result` is what the method returned (undefined for none); `error` its error's message. */
export type SolanaResponse = { id: number; result: unknown } | { id: number; error: string };

async function main(): Promise<void> {
  const send = process.send?.bind(process);
  if (!send) throw new Error('fake-solana-process must be started with an IPC channel');
  // Registered before LiteSVM is loaded, so no path leads to a normal exit.
  process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
  const post = (message: SolanaChildMessage) => {
    if (process.connected) send(message);
  };

  let mode: Required<Omit<SendMode, 'times'>> = { before: 'apply', after: 'answer' };
  let left = Number.POSITIVE_INFINITY;
  /** The `after` verdict of each request under way, taken when it arrived. */
  const afterOf = new WeakMap<Uint8Array, 'answer' | 'drop'>();
  const acks = new Map<number, () => void>();
  let nextEvent = 1;
  const announce = (phase: SendPhase, signature: string) =>
    new Promise<void>((resolve) => {
      const event = nextEvent++;
      acks.set(event, resolve);
      post({ type: 'send', event, phase, signature });
    });

  const options = JSON.parse(process.argv[2] ?? '{}') as FakeSolanaProcessOptions;
  const fake = await startFakeSolana({
    ...options,
    onSendTransaction: async ({ signature, bytes }) => {
      const taken = left > 0 ? mode : { before: 'apply' as const, after: 'answer' as const };
      if (left > 0 && --left === 0) mode = { before: 'apply', after: 'answer' };
      afterOf.set(bytes, taken.after);
      await announce('before', signature);
      return taken.before;
    },
    afterApply: async ({ signature, bytes }) => {
      await announce('after', signature);
      return afterOf.get(bytes) ?? 'answer';
    },
  });

  const key = (base58: string) => new PublicKey(base58);
  const methods: SolanaMethods = {
    height: () => fake.height,
    advance: (n) => fake.advance(n),
    outage: (on) => fake.outage(on),
    fund: (pubkey, lamports) => fake.fund(key(pubkey), BigInt(lamports)),
    createMint: (decimals) => fake.createMint(decimals).toBase58(),
    mintTo: (mint, owner, amount) => fake.mintTo(key(mint), key(owner), BigInt(amount)).toBase58(),
    balance: (pubkey) => fake.balance(key(pubkey)).toString(),
    tokenBalance: (mint, owner) => fake.tokenBalance(key(mint), key(owner)).toString(),
    landed: () => [...fake.landed],
    sent: () => fake.sent,
    requests: () => Object.fromEntries(fake.requests),
    sendMode: ({ before = 'apply', after = 'answer', times }) => {
      if (before !== 'apply' && before !== 'drop') throw new Error(`sendMode: bad before ${before}`);
      if (after !== 'answer' && after !== 'drop') throw new Error(`sendMode: bad after ${after}`);
      if (times !== undefined && (!Number.isInteger(times) || times <= 0))
        throw new Error(`sendMode: times must be a positive integer, got ${times}`);
      mode = { before, after };
      left = times ?? Number.POSITIVE_INFINITY;
    },
  };

  process.on('message', (message: SolanaParentMessage) => {
    if ('type' in message) {
      acks.get(message.event)?.();
      acks.delete(message.event);
      return;
    }
    const { id, method, args } = message;
    try {
      if (!Object.hasOwn(methods, method)) throw new Error(`unknown method ${method}`);
      const result = (methods[method] as (...a: unknown[]) => unknown)(...args);
      post({ id, result });
    } catch (error) {
      post({ id, error: (error as Error).message ?? String(error) });
    }
  });
  post({ type: 'ready', url: fake.url });
}

main().catch((error: unknown) => {
  console.error('fake-solana-process:', error);
  // Failed before serving anything: no BPF program has run, so a normal exit is safe.
  process.exit(1);
});
