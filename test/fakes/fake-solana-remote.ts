import { fork } from 'node:child_process';
import { join } from 'node:path';
import { PublicKey } from '@solana/web3.js';
import type {
  FakeSolanaProcessOptions,
  SendMode,
  SendPhase,
  SolanaChildMessage,
  SolanaMethod,
  SolanaMethods,
  SolanaParentMessage,
  SolanaRequest,
} from './fake-solana-process.js';

export {
  DEVNET_GENESIS_HASH,
  FAKE_GENESIS_HASH,
  LAMPORTS_PER_SIGNATURE,
  MAINNET_GENESIS_HASH,
} from './fake-solana-common.js';
export type { FakeSolanaProcessOptions, SendMode } from './fake-solana-process.js';

export interface SendEvent {
  phase: SendPhase;
  signature: string;
}

/**
 * The fake Solana RPC (test/fakes/fake-solana.ts) running in a child process, with its controls
 * as async calls. LiteSVM can abort the process it lives in (see LITESVM_NODE_FLAGS), so tests
 * never load it themselves: this module imports neither LiteSVM nor the fake.
 */
export interface SolanaProcess {
  url: string;
  height(): Promise<number>;
  /** Moves the block height forward by `n` at once. */
  advance(n: number): Promise<void>;
  /** While on, every HTTP request gets 503. */
  outage(on: boolean): Promise<void>;
  /** Adds lamports to an account, creating it (system-owned) if needed. */
  fund(pubkey: PublicKey | string, lamports: bigint | number): Promise<void>;
  /** A new initialised mint, with a throwaway authority. */
  createMint(decimals: number): Promise<PublicKey>;
  /** Credits `owner`'s associated token account (created if needed); resolves with its address. */
  mintTo(mint: PublicKey | string, owner: PublicKey | string, amount: bigint | number): Promise<PublicKey>;
  balance(pubkey: PublicKey | string): Promise<bigint>;
  tokenBalance(mint: PublicKey | string, owner: PublicKey | string): Promise<bigint>;
  /** Signatures that landed through `sendTransaction`, failed ones (skipPreflight) included. */
  landed(): Promise<string[]>;
  /** `sendTransaction` requests received, dropped and refused ones included. */
  sent(): Promise<number>;
  /** Requests per JSON-RPC method (batch members counted one by one). */
  requests(): Promise<Record<string, number>>;
  /** What the next sendTransaction requests do; see `SendMode`. */
  sendMode(mode: SendMode): Promise<void>;
  /**
   * Called for each sendTransaction, before the fake applies it ('before') and after it landed
   * ('after'). The fake holds that request until the listener returns (or its promise settles), so
   * a listener can kill a client at exactly that point: before it could get an answer.
   */
  onSend(listener: ((event: SendEvent) => void | Promise<void>) | undefined): void;
  /** Disconnects and kills the child; resolves once it has exited. */
  close(): Promise<void>;
}

const ENTRY = join(import.meta.dirname, 'fake-solana-process.ts');
const READY_TIMEOUT_MS = 20_000;

const base58 = (key: PublicKey | string) => (typeof key === 'string' ? key : key.toBase58());

/**
 * LiteSVM 0.8's native module, once it has run on-chain programs (SPL Token, Memo), makes V8's
 * garbage collector abort the process (`std::bad_alloc` while it rehashes its allocation-site
 * pretenuring table, seen with gdb on Node 20 and 22). Without that optimisation the runtime is
 * stable over thousands of program runs, so the fake runs with it off, in a process of its own.
 */
export const LITESVM_NODE_FLAGS = ['--no-allocation-site-pretenuring'];

export async function startSolanaProcess(options: FakeSolanaProcessOptions = {}): Promise<SolanaProcess> {
  const child = fork(ENTRY, [JSON.stringify(options)], {
    execArgv: [...LITESVM_NODE_FLAGS, '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ? `signal ${signal}` : `code ${code}`)),
  );
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let nextId = 1;
  let listener: ((event: SendEvent) => void | Promise<void>) | undefined;
  let closing = false;
  let gone: string | undefined;

  const post = (message: SolanaParentMessage) => {
    if (child.connected) child.send(message);
  };
  const call = <M extends SolanaMethod>(method: M, ...args: Parameters<SolanaMethods[M]>) =>
    new Promise<ReturnType<SolanaMethods[M]>>((resolve, reject) => {
      if (!child.connected)
        return reject(
          new Error(`fake Solana ${method}: the process ${gone ? `exited (${gone})` : 'is gone'}`),
        );
      const id = nextId++;
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      child.send({ id, method, args } satisfies SolanaRequest<M>);
    });

  const ready = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the fake Solana process was not ready within ${READY_TIMEOUT_MS} ms`));
    }, READY_TIMEOUT_MS);
    // Spawn and IPC errors; a child that is gone also exits, which settles everything.
    child.on('error', (error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    });
    child.on('message', (message: SolanaChildMessage) => {
      if ('id' in message) {
        const waiter = pending.get(message.id);
        pending.delete(message.id);
        if ('error' in message) waiter?.reject(new Error(`fake Solana: ${message.error}`));
        else waiter?.resolve(message.result);
      } else if (message.type === 'ready') {
        clearTimeout(timer);
        resolve(message.url);
      } else if (message.type === 'send') {
        const { event, phase, signature } = message;
        // A listener that throws fails the test (an unhandled rejection); the fake goes on anyway.
        void Promise.resolve()
          .then(() => listener?.({ phase, signature }))
          .finally(() => post({ type: 'ack', event }));
      }
    });
    void exited.then((how) => {
      gone = how;
      clearTimeout(timer);
      reject(new Error(`the fake Solana process exited (${how}) before it was ready`));
      for (const waiter of pending.values())
        waiter.reject(new Error(`the fake Solana process exited (${how})${closing ? ' on close' : ''}`));
      pending.clear();
    });
  });
  const url = await ready;

  return {
    url,
    height: () => call('height'),
    advance: (n) => call('advance', n),
    outage: (on) => call('outage', on),
    fund: (pubkey, lamports) => call('fund', base58(pubkey), BigInt(lamports).toString()),
    createMint: async (decimals) => new PublicKey(await call('createMint', decimals)),
    mintTo: async (mint, owner, amount) =>
      new PublicKey(await call('mintTo', base58(mint), base58(owner), BigInt(amount).toString())),
    balance: async (pubkey) => BigInt(await call('balance', base58(pubkey))),
    tokenBalance: async (mint, owner) => BigInt(await call('tokenBalance', base58(mint), base58(owner))),
    landed: () => call('landed'),
    sent: () => call('sent'),
    requests: () => call('requests'),
    sendMode: (mode) => call('sendMode', mode),
    onSend: (next) => {
      listener = next;
    },
    close: async () => {
      closing = true;
      // The child kills itself on disconnect; SIGKILL as well in case it is stuck.
      if (child.connected) child.disconnect();
      child.kill('SIGKILL');
      await exited;
    },
  };
}
