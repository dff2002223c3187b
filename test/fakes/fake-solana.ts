import { createHash } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import {
  AccountLayout,
  AccountState,
  getAssociatedTokenAddressSync,
  MintLayout,
  TOKEN_PROGRAM_ID,
} from '@solana/spl-token';
import { Keypair, PublicKey, VersionedMessage, VersionedTransaction } from '@solana/web3.js';
import bs58 from 'bs58';
import { FailedTransactionMetadata, LiteSVM } from 'litesvm';
import { listenLocal } from '../support/listen.js';
import { FAKE_GENESIS_HASH, LAMPORTS_PER_SIGNATURE } from './fake-solana-common.js';

/**
 * A local Solana JSON-RPC server over an in-process LiteSVM, so the real `Connection` from
 * `@solana/web3.js` 1.x runs unmodified against it (`new Connection(fake.url, 'confirmed')`).
 *
 * - Block height is the fake's own: one block every `slotMs`, each with its own blockhash, valid
 *   for `blockhashValidity` blocks. Slot equals block height (no skipped slots).
 * - `sendTransaction` behaves like an RPC node: with preflight (the default) a transaction that
 *   would fail is refused with -32002 and never lands, an expired or unknown blockhash gives
 *   `Blockhash not found`, a resend of a landed one `This transaction has already been processed`,
 *   a bad signature -32003. With `skipPreflight` the node answers the signature in every case;
 *   runtime failures land as failed (fee charged) and the rest never land.
 * - Statuses are 'confirmed' on landing and 'finalized' `finalizeAfter` blocks later.
 * - Faults: `onSendTransaction` / `afterApply` hooks ('drop' destroys the socket without an
 *   answer, before or after the transaction is applied) and `outage` (HTTP 503 for everything).
 *
 * Not served: websockets (so `confirmTransaction` cannot be used; poll `getSignatureStatuses`),
 * `getTransaction`, `simulateTransaction`, program-account queries, jsonParsed encodings.
 *
 * Tests use it through `startSolanaProcess` (test/fakes/fake-solana-remote.ts), in a process of
 * its own: once LiteSVM has run BPF programs, the process can abort (`std::bad_alloc`, in a garbage
 * collection or at exit), which in a test worker kills the worker and fails the run.
 */

export {
  DEVNET_GENESIS_HASH,
  FAKE_GENESIS_HASH,
  LAMPORTS_PER_SIGNATURE,
  MAINNET_GENESIS_HASH,
} from './fake-solana-common.js';

export type SendVerdict = 'apply' | 'drop';
export interface SendInfo {
  signature: string;
  bytes: Uint8Array;
}
/** Decides, before anything else, whether a `sendTransaction` request is served or dropped. */
export type SendHook = (info: SendInfo) => SendVerdict | Promise<SendVerdict>;
/** Runs after a transaction landed (`err` null on success); 'drop' leaves the request unanswered. */
export type AfterApplyHook = (
  info: SendInfo & { err: unknown },
) => undefined | 'answer' | 'drop' | Promise<undefined | 'answer' | 'drop'>;

export interface FakeSolanaOptions {
  /** Milliseconds per block. Default 50. */
  slotMs?: number;
  /** Blocks a blockhash stays valid (`lastValidBlockHeight` = height + this). Default 150. */
  blockhashValidity?: number;
  /** Blocks after landing before a status turns 'finalized'. Default 4. */
  finalizeAfter?: number;
  /** Answer of `getGenesisHash`; also seeds the blockhashes. Default `FAKE_GENESIS_HASH`. */
  genesisHash?: string;
  onSendTransaction?: SendHook;
  afterApply?: AfterApplyHook;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default: a free port. */
  port?: number;
}

export interface FakeSolana {
  url: string;
  svm: LiteSVM;
  readonly height: number;
  /** `sendTransaction` requests received, dropped and refused ones included. */
  readonly sent: number;
  /** Signatures that landed through `sendTransaction`, failed ones (skipPreflight) included. */
  readonly landed: string[];
  /** Requests per JSON-RPC method (batch members counted one by one). */
  readonly requests: Map<string, number>;
  /** Moves the block height forward by `n` at once. */
  advance(n: number): void;
  onSendTransaction(hook: SendHook | undefined): void;
  afterApply(hook: AfterApplyHook | undefined): void;
  /** While on, every HTTP request gets 503. */
  outage(on: boolean): void;
  /** Adds lamports to an account, creating it (system-owned) if needed. */
  fund(pubkey: PublicKey, lamports: bigint | number): void;
  /** A new initialised mint; the authority defaults to a throwaway key. */
  createMint(decimals: number, authority?: PublicKey): PublicKey;
  /** Credits `owner`'s associated token account (created if needed); returns its address. */
  mintTo(mint: PublicKey, owner: PublicKey, amount: bigint | number): PublicKey;
  tokenBalance(mint: PublicKey, owner: PublicKey): bigint;
  balance(pubkey: PublicKey): bigint;
  close(): Promise<void>;
}

interface Status {
  slot: number;
  err: unknown;
  finalized?: boolean;
}

interface RpcCall {
  id?: unknown;
  method?: unknown;
  params?: unknown;
}

class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

/** Returned by a handler when the connection must be destroyed without an answer. */
const DROP = Symbol('drop');

export async function startFakeSolana(options: FakeSolanaOptions = {}): Promise<FakeSolana> {
  const slotMs = options.slotMs ?? 50;
  const validity = options.blockhashValidity ?? 150;
  const finalizeAfter = options.finalizeAfter ?? 4;
  const genesisHash = options.genesisHash ?? FAKE_GENESIS_HASH;
  for (const [name, value] of Object.entries({ slotMs, validity, finalizeAfter }))
    if (!Number.isInteger(value) || value <= 0)
      throw new RangeError(`${name} must be a positive integer, got ${value}`);

  // LiteSVM's blockhash never moves on its own; the fake decides which blockhashes are valid.
  const svm = new LiteSVM().withBlockhashCheck(false).withSigverify(true);
  const blockhashes = new Map<string, number>();
  const statuses = new Map<string, Status>();
  const requests = new Map<string, number>();
  const landed: string[] = [];
  let height = 0;
  let sent = 0;
  let down = false;
  let beforeHook = options.onSendTransaction;
  let afterHook = options.afterApply;

  const rentExempt = (size: number) => Number(svm.minimumBalanceForRentExemption(BigInt(size)));
  const blockhashAt = (h: number) => bs58.encode(sha256(`${genesisHash}:${h}`));
  const advance = (n: number) => {
    for (let i = 0; i < n; i++) blockhashes.set(blockhashAt(++height), height);
    svm.warpToSlot(BigInt(height));
  };
  advance(1);
  const timer = setInterval(() => advance(1), slotMs);
  timer.unref();

  const isValid = (blockhash: string) => {
    const at = blockhashes.get(blockhash);
    return at !== undefined && height <= at + validity;
  };
  const withContext = (value: unknown) => ({ context: { slot: height }, value });
  const statusOf = (signature: string, searchHistory: boolean) => {
    const s = statuses.get(signature);
    // The node's status cache only covers recent slots; older ones need searchTransactionHistory.
    if (!s || (!searchHistory && height - s.slot > 300)) return null;
    const finalized = s.finalized || height >= s.slot + finalizeAfter;
    return {
      slot: s.slot,
      confirmations: finalized ? null : height - s.slot,
      err: s.err,
      status: s.err === null ? { Ok: null } : { Err: s.err },
      confirmationStatus: finalized ? 'finalized' : 'confirmed',
    };
  };
  const accountJson = (address: string, encoding?: string) => {
    const account = svm.getAccount(new PublicKey(address));
    if (!account) return null;
    const data = Buffer.from(account.data);
    return {
      lamports: account.lamports,
      owner: account.owner.toBase58(),
      data: encoding === 'base58' ? [bs58.encode(data), 'base58'] : [data.toString('base64'), 'base64'],
      executable: account.executable,
      rentEpoch: account.rentEpoch ?? 0,
      space: data.length,
    };
  };

  async function sendTransaction([encoded, config = {}]: any[]): Promise<unknown> {
    sent += 1;
    let bytes: Uint8Array;
    let tx: VersionedTransaction;
    try {
      bytes = config.encoding === 'base64' ? Buffer.from(encoded, 'base64') : bs58.decode(encoded);
      tx = VersionedTransaction.deserialize(bytes);
    } catch (error) {
      throw new RpcError(-32602, `invalid transaction: ${(error as Error).message}`);
    }
    const signature = bs58.encode(tx.signatures[0] ?? new Uint8Array(64));
    if ((await beforeHook?.({ signature, bytes })) === 'drop') return DROP;

    const refusal = statuses.has(signature)
      ? 'AlreadyProcessed'
      : !isValid(tx.message.recentBlockhash)
        ? 'BlockhashNotFound'
        : undefined;
    if (config.skipPreflight) {
      // Without preflight the node forwards and answers at once; the leader drops what cannot land.
      if (refusal) return signature;
    } else {
      if (refusal) throw preflightFailure(refusal, []);
      const simulated = svm.simulateTransaction(tx);
      if (simulated instanceof FailedTransactionMetadata)
        throw preflightFailure(errorJson(simulated.err()), simulated.meta().logs());
    }

    const result = svm.sendTransaction(tx);
    const err = result instanceof FailedTransactionMetadata ? errorJson(result.err()) : null;
    // A failure in loading (fee payer, signature) leaves no trace; one in execution lands with its fee.
    if (err !== null && !svm.getTransaction(tx.signatures[0] as Uint8Array)) return signature;
    statuses.set(signature, { slot: height, err });
    landed.push(signature);
    if ((await afterHook?.({ signature, bytes, err })) === 'drop') return DROP;
    return signature;
  }

  // Params come straight from JSON; a handler that trips over bad ones answers -32602.
  const methods: Record<string, (params: any[]) => unknown> = {
    getHealth: () => 'ok',
    getVersion: () => ({ 'solana-core': '2.2.0', 'feature-set': 3294202862 }),
    getGenesisHash: () => genesisHash,
    getSlot: () => height,
    getBlockHeight: () => height,
    getEpochInfo: () => ({
      epoch: Math.floor(height / 432_000),
      slotIndex: height % 432_000,
      slotsInEpoch: 432_000,
      absoluteSlot: height,
      blockHeight: height,
      transactionCount: landed.length,
    }),
    getLatestBlockhash: () =>
      withContext({ blockhash: blockhashAt(height), lastValidBlockHeight: height + validity }),
    isBlockhashValid: ([blockhash]) => withContext(isValid(blockhash)),
    getFeeForMessage: ([message]) => {
      const parsed = VersionedMessage.deserialize(Buffer.from(message, 'base64'));
      return withContext(
        isValid(parsed.recentBlockhash) ? parsed.header.numRequiredSignatures * LAMPORTS_PER_SIGNATURE : null,
      );
    },
    getMinimumBalanceForRentExemption: ([size]) => rentExempt(size),
    getBalance: ([address]) => withContext(Number(svm.getBalance(new PublicKey(address)) ?? 0n)),
    getAccountInfo: ([address, config]) => withContext(accountJson(address, config?.encoding)),
    getMultipleAccounts: ([addresses, config]) =>
      withContext(addresses.map((a: string) => accountJson(a, config?.encoding))),
    getTokenAccountBalance: ([address]) => {
      const account = svm.getAccount(new PublicKey(address));
      if (!account?.owner.equals(TOKEN_PROGRAM_ID))
        throw new RpcError(-32602, 'Invalid param: could not find account');
      const { mint, amount } = AccountLayout.decode(Buffer.from(account.data));
      const mintAccount = svm.getAccount(mint);
      const decimals = mintAccount ? MintLayout.decode(Buffer.from(mintAccount.data)).decimals : 0;
      const ui = formatUnits(amount, decimals);
      return withContext({ amount: amount.toString(), decimals, uiAmount: Number(ui), uiAmountString: ui });
    },
    getSignatureStatuses: ([signatures, config]) =>
      withContext(signatures.map((s: string) => statusOf(s, config?.searchTransactionHistory === true))),
    requestAirdrop: ([address, lamports]) => {
      // LiteSVM signs airdrops with its own fixed blockhash: a repeat of the same one would be a duplicate.
      svm.expireBlockhash();
      const result = svm.airdrop(new PublicKey(address), BigInt(lamports));
      if (!result || result instanceof FailedTransactionMetadata)
        throw new RpcError(-32603, 'Internal error: airdrop failed');
      const signature = bs58.encode(result.signature());
      statuses.set(signature, { slot: height, err: null, finalized: true });
      return signature;
    },
    sendTransaction,
  };

  async function answer(call: RpcCall): Promise<unknown> {
    const id = call.id ?? null;
    const method = typeof call.method === 'string' ? call.method : '';
    requests.set(method, (requests.get(method) ?? 0) + 1);
    const handler = Object.hasOwn(methods, method) ? methods[method] : undefined;
    if (!handler) return { jsonrpc: '2.0', id, error: { code: -32601, message: 'Method not found' } };
    try {
      const result = await handler(Array.isArray(call.params) ? call.params : []);
      return result === DROP ? DROP : { jsonrpc: '2.0', id, result };
    } catch (error) {
      const { code, message, data } =
        error instanceof RpcError
          ? error
          : new RpcError(-32602, `Invalid params: ${(error as Error).message}`);
      return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } };
    }
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      if (down) return reply(res, 503, 'Service Unavailable');
      if (req.method === 'GET' && req.url === '/health') return reply(res, 200, 'ok');
      if (req.method !== 'POST') return reply(res, 405, 'Method Not Allowed');
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return reply(res, 200, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
      }
      const answers = await Promise.all(
        (Array.isArray(body) ? body : [body]).map((c) => answer(c as RpcCall)),
      );
      if (answers.includes(DROP)) return res.socket?.destroy();
      reply(res, 200, Array.isArray(body) ? answers : answers[0]);
    });
  });
  const port = await listenLocal(server, options.port ?? 0, options.host ?? '127.0.0.1');

  /** Writes an SPL Token account (a mint or a token account) holding rent-exempt lamports. */
  const putToken = <T>(
    address: PublicKey,
    layout: { span: number; encode(v: T, b: Buffer): number },
    value: T,
  ) => {
    const data = Buffer.alloc(layout.span);
    layout.encode(value, data);
    svm.setAccount(address, {
      lamports: rentExempt(data.length),
      data,
      owner: TOKEN_PROGRAM_ID,
      executable: false,
    });
  };
  const tokenBalance = (mint: PublicKey, owner: PublicKey) => {
    const account = svm.getAccount(getAssociatedTokenAddressSync(mint, owner, true));
    return account ? AccountLayout.decode(Buffer.from(account.data)).amount : 0n;
  };

  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    svm,
    get height() {
      return height;
    },
    get sent() {
      return sent;
    },
    landed,
    requests,
    advance,
    onSendTransaction: (hook) => {
      beforeHook = hook;
    },
    afterApply: (hook) => {
      afterHook = hook;
    },
    outage: (on) => {
      down = on;
    },
    fund: (pubkey, lamports) => {
      const account = svm.getAccount(pubkey);
      svm.setAccount(pubkey, {
        lamports: (account?.lamports ?? 0) + Number(lamports),
        data: account?.data ?? new Uint8Array(),
        owner: account?.owner ?? PublicKey.default,
        executable: account?.executable ?? false,
      });
    },
    createMint: (decimals, authority) => {
      const mint = Keypair.generate().publicKey;
      putToken(mint, MintLayout, {
        mintAuthorityOption: 1,
        mintAuthority: authority ?? Keypair.generate().publicKey,
        supply: 0n,
        decimals,
        isInitialized: true,
        freezeAuthorityOption: 0,
        freezeAuthority: PublicKey.default,
      });
      return mint;
    },
    mintTo: (mint, owner, amount) => {
      const mintAccount = svm.getAccount(mint);
      if (!mintAccount) throw new Error(`mint ${mint.toBase58()} does not exist`);
      const raw = MintLayout.decode(Buffer.from(mintAccount.data));
      putToken(mint, MintLayout, { ...raw, supply: raw.supply + BigInt(amount) });
      const address = getAssociatedTokenAddressSync(mint, owner, true);
      putToken(address, AccountLayout, {
        mint,
        owner,
        amount: tokenBalance(mint, owner) + BigInt(amount),
        delegateOption: 0,
        delegate: PublicKey.default,
        state: AccountState.Initialized,
        isNativeOption: 0,
        isNative: 0n,
        delegatedAmount: 0n,
        closeAuthorityOption: 0,
        closeAuthority: PublicKey.default,
      });
      return address;
    },
    tokenBalance,
    balance: (pubkey) => svm.getBalance(pubkey) ?? 0n,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(timer);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': typeof body === 'string' ? 'text/plain' : 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

// LiteSVM's error enums are numeric at runtime with no names; these are their JSON names, in order.
const TX_ERRORS = (
  'AccountInUse AccountLoadedTwice AccountNotFound ProgramAccountNotFound InsufficientFundsForFee ' +
  'InvalidAccountForFee AlreadyProcessed BlockhashNotFound CallChainTooDeep MissingSignatureForFee ' +
  'InvalidAccountIndex SignatureFailure InvalidProgramForExecution SanitizeFailure ClusterMaintenance ' +
  'AccountBorrowOutstanding WouldExceedMaxBlockCostLimit UnsupportedVersion InvalidWritableAccount ' +
  'WouldExceedMaxAccountCostLimit WouldExceedAccountDataBlockLimit TooManyAccountLocks ' +
  'AddressLookupTableNotFound InvalidAddressLookupTableOwner InvalidAddressLookupTableData ' +
  'InvalidAddressLookupTableIndex InvalidRentPayingAccount WouldExceedMaxVoteCostLimit ' +
  'WouldExceedAccountDataTotalLimit MaxLoadedAccountsDataSizeExceeded ResanitizationNeeded ' +
  'InvalidLoadedAccountsDataSizeLimit UnbalancedTransaction ProgramCacheHitMaxLimit CommitCancelled'
).split(' ');
const INSTRUCTION_ERRORS = (
  'GenericError InvalidArgument InvalidInstructionData InvalidAccountData AccountDataTooSmall ' +
  'InsufficientFunds IncorrectProgramId MissingRequiredSignature AccountAlreadyInitialized ' +
  'UninitializedAccount UnbalancedInstruction ModifiedProgramId ExternalAccountLamportSpend ' +
  'ExternalAccountDataModified ReadonlyLamportChange ReadonlyDataModified DuplicateAccountIndex ' +
  'ExecutableModified RentEpochModified NotEnoughAccountKeys AccountDataSizeChanged AccountNotExecutable ' +
  'AccountBorrowFailed AccountBorrowOutstanding DuplicateAccountOutOfSync InvalidError ' +
  'ExecutableDataModified ExecutableLamportChange ExecutableAccountNotRentExempt UnsupportedProgramId ' +
  'CallDepth MissingAccount ReentrancyNotAllowed MaxSeedLengthExceeded InvalidSeeds InvalidRealloc ' +
  'ComputationalBudgetExceeded PrivilegeEscalation ProgramEnvironmentSetupFailure ' +
  'ProgramFailedToComplete ProgramFailedToCompile Immutable IncorrectAuthority AccountNotRentExempt ' +
  'InvalidAccountOwner ArithmeticOverflow UnsupportedSysvar IllegalOwner ' +
  'MaxAccountsDataAllocationsExceeded MaxAccountsExceeded MaxInstructionTraceLengthExceeded ' +
  'BuiltinProgramsMustConsumeComputeUnits BorshIoError'
).split(' ');

/** A LiteSVM error in the JSON form a node uses in statuses and preflight errors. */
function errorJson(err: ReturnType<FailedTransactionMetadata['err']>): unknown {
  if (typeof err === 'number') return TX_ERRORS[err] ?? `TransactionError${err}`;
  if ('err' in err) {
    const inner = err.err();
    const detail =
      typeof inner === 'number'
        ? (INSTRUCTION_ERRORS[inner] ?? `InstructionError${inner}`)
        : 'code' in inner
          ? { Custom: inner.code }
          : { BorshIoError: inner.msg };
    return { InstructionError: [err.index, detail] };
  }
  if ('index' in err) return { DuplicateInstruction: err.index };
  // InsufficientFundsForRent and ProgramExecutionTemporarilyRestricted, named by their class.
  return { [err.constructor.name.replace(/^TransactionError/, '')]: { account_index: err.accountIndex } };
}

const MESSAGES: Record<string, string> = {
  AlreadyProcessed: 'This transaction has already been processed',
  BlockhashNotFound: 'Blockhash not found',
  AccountNotFound: 'Attempt to debit an account but found no record of a prior credit.',
  InsufficientFundsForFee: 'Insufficient funds for fee',
};

function preflightFailure(err: unknown, logs: string[]): RpcError {
  if (err === 'SignatureFailure') return new RpcError(-32003, 'Transaction signature verification failure');
  let text = typeof err === 'string' ? (MESSAGES[err] ?? err) : JSON.stringify(err);
  const ix = (err as { InstructionError?: [number, unknown] }).InstructionError;
  if (ix) {
    const [index, detail] = ix;
    const custom = (detail as { Custom?: number }).Custom;
    text = `Error processing Instruction ${index}: ${custom === undefined ? String(detail) : `custom program error: 0x${custom.toString(16)}`}`;
  }
  return new RpcError(-32002, `Transaction simulation failed: ${text}`, {
    accounts: null,
    err,
    innerInstructions: null,
    logs,
    replacementBlockhash: null,
    returnData: null,
    unitsConsumed: 0,
  });
}

function formatUnits(amount: bigint, decimals: number): string {
  const text = amount.toString().padStart(decimals + 1, '0');
  const whole = text.slice(0, text.length - decimals);
  const fraction = text.slice(text.length - decimals).replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : whole;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
