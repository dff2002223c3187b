import { spawn } from 'node:child_process';
import {
  createAssociatedTokenAccountIdempotentInstruction,
  createTransferCheckedInstruction,
  getAccount,
  getAssociatedTokenAddressSync,
} from '@solana/spl-token';
import {
  Connection,
  Keypair,
  LAMPORTS_PER_SOL,
  type PublicKey,
  SendTransactionError,
  SystemProgram,
  Transaction,
  type TransactionInstruction,
} from '@solana/web3.js';
import bs58 from 'bs58';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEVNET_GENESIS_HASH,
  FAKE_GENESIS_HASH,
  LAMPORTS_PER_SIGNATURE,
  type SendEvent,
  type SolanaProcess,
  startSolanaProcess,
} from '../../fakes/fake-solana-remote.js';

// The fake runs in a child process: LiteSVM must never be loaded in a test worker.
let fake: SolanaProcess;
let connection: Connection;

beforeAll(async () => {
  fake = await startSolanaProcess({ slotMs: 20 });
  connection = new Connection(fake.url, 'confirmed');
});
afterAll(() => fake?.close());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function signed(payer: Keypair, ...instructions: TransactionInstruction[]): Promise<Buffer> {
  const { blockhash, lastValidBlockHeight } = await connection.getLatestBlockhash();
  const tx = new Transaction({ feePayer: payer.publicKey, blockhash, lastValidBlockHeight }).add(
    ...instructions,
  );
  tx.sign(payer);
  return tx.serialize();
}

const transfer = (from: Keypair, to: PublicKey, lamports: number) =>
  SystemProgram.transfer({ fromPubkey: from.publicKey, toPubkey: to, lamports });

async function waitFor(signature: string, wanted: 'confirmed' | 'finalized') {
  for (let i = 0; i < 500; i++) {
    const { value } = await connection.getSignatureStatuses([signature], { searchTransactionHistory: true });
    if (value[0]?.confirmationStatus === wanted) return value[0];
    await sleep(10);
  }
  throw new Error(`${signature} never became ${wanted}`);
}

async function rpc(method: string, params: unknown[] = []): Promise<any> {
  const res = await fetch(fake.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: '1', method, params }),
  });
  return res.json();
}

async function funded(sol = 2): Promise<Keypair> {
  const keypair = Keypair.generate();
  await fake.fund(keypair.publicKey, sol * LAMPORTS_PER_SOL);
  return keypair;
}

describe('fake Solana RPC with the real Connection', () => {
  it('reports balances, cluster identity and chain progress', async () => {
    const owner = await funded(3);
    expect(await connection.getBalance(owner.publicKey)).toBe(3 * LAMPORTS_PER_SOL);
    expect(await connection.getGenesisHash()).toBe(FAKE_GENESIS_HASH);
    const before = await connection.getBlockHeight();
    await sleep(100);
    expect(await connection.getBlockHeight()).toBeGreaterThan(before);
    const epoch = await connection.getEpochInfo();
    expect(epoch.blockHeight).toBe(epoch.absoluteSlot);
    expect(await connection.getSlot()).toBeGreaterThanOrEqual(epoch.absoluteSlot);
    expect((await connection.getVersion())['solana-core']).toMatch(/^\d/);
    expect(await connection.getMinimumBalanceForRentExemption(165)).toBeGreaterThan(0);
    const [info, missing] = await connection.getMultipleAccountsInfo([
      owner.publicKey,
      Keypair.generate().publicKey,
    ]);
    expect(info?.lamports).toBe(3 * LAMPORTS_PER_SOL);
    expect(missing).toBeNull();

    expect(await fake.height()).toBeGreaterThanOrEqual(epoch.absoluteSlot);

    const devnet = await startSolanaProcess({ genesisHash: DEVNET_GENESIS_HASH });
    try {
      expect(await new Connection(devnet.url).getGenesisHash()).toBe(DEVNET_GENESIS_HASH);
    } finally {
      await devnet.close();
    }
  });

  it('lands a SOL transfer, confirmed then finalized, and a resend lands once', async () => {
    const payer = await funded();
    const to = Keypair.generate().publicKey;
    const bytes = await signed(payer, transfer(payer, to, LAMPORTS_PER_SOL / 2));
    const signature = await connection.sendRawTransaction(bytes);

    const confirmed = await waitFor(signature, 'confirmed');
    expect(confirmed.err).toBeNull();
    expect(await waitFor(signature, 'finalized')).toMatchObject({ confirmations: null, err: null });
    expect(await fake.landed()).toContain(signature);

    // Without preflight the node accepts the resend and drops it; with preflight it says so.
    expect(await connection.sendRawTransaction(bytes, { skipPreflight: true })).toBe(signature);
    const base58 = await rpc('sendTransaction', [bs58.encode(bytes), { skipPreflight: true }]);
    expect(base58.result).toBe(signature);
    await expect(connection.sendRawTransaction(bytes)).rejects.toThrow(/already been processed/);
    expect(await connection.getBalance(to)).toBe(LAMPORTS_PER_SOL / 2);
    expect(await connection.getBalance(payer.publicKey)).toBe(
      2 * LAMPORTS_PER_SOL - LAMPORTS_PER_SOL / 2 - LAMPORTS_PER_SIGNATURE,
    );
    expect((await fake.landed()).filter((s) => s === signature)).toHaveLength(1);
  });

  it('refuses a transaction whose blockhash has expired', async () => {
    const payer = await funded();
    const to = Keypair.generate().publicKey;
    const { blockhash, lastValidBlockHeight } = await connection.getLatestBlockhash();
    const tx = new Transaction({ feePayer: payer.publicKey, blockhash, lastValidBlockHeight }).add(
      transfer(payer, to, LAMPORTS_PER_SOL),
    );
    tx.sign(payer);
    expect(await connection.getFeeForMessage(tx.compileMessage())).toMatchObject({ value: 5000 });

    await fake.advance(151);
    expect(await connection.getBlockHeight()).toBeGreaterThan(lastValidBlockHeight);
    expect((await connection.isBlockhashValid(blockhash)).value).toBe(false);
    const error = await connection.sendRawTransaction(tx.serialize()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SendTransactionError);
    expect((error as Error).message).toMatch(/Blockhash not found/);
    const raw = await rpc('sendTransaction', [tx.serialize().toString('base64'), { encoding: 'base64' }]);
    expect(raw.error).toMatchObject({ code: -32002, data: { err: 'BlockhashNotFound' } });
    expect(await connection.getBalance(to)).toBe(0);
  });

  it('refuses a failing transaction in preflight; without preflight it lands as failed', async () => {
    const payer = await funded(1);
    const to = Keypair.generate().publicKey;
    const error = await connection
      .sendRawTransaction(await signed(payer, transfer(payer, to, 5 * LAMPORTS_PER_SOL)))
      .catch((e: unknown) => e);
    expect((error as SendTransactionError).message).toMatch(/custom program error: 0x1/);
    expect((error as SendTransactionError).logs?.join('\n')).toMatch(/insufficient lamports/);
    expect(await connection.getBalance(payer.publicKey)).toBe(LAMPORTS_PER_SOL);

    const bytes = await signed(payer, transfer(payer, to, 6 * LAMPORTS_PER_SOL));
    const signature = await connection.sendRawTransaction(bytes, { skipPreflight: true });
    const status = await waitFor(signature, 'confirmed');
    expect(status.err).toEqual({ InstructionError: [0, { Custom: 1 }] });
    expect(await connection.getBalance(payer.publicKey)).toBe(LAMPORTS_PER_SOL - LAMPORTS_PER_SIGNATURE);
  });

  it('moves SPL tokens with TransferChecked into a new associated account', async () => {
    const sender = await funded();
    const recipient = Keypair.generate().publicKey;
    const mint = await fake.createMint(6);
    const from = await fake.mintTo(mint, sender.publicKey.toBase58(), 1_000_000n);
    expect(from.equals(getAssociatedTokenAddressSync(mint, sender.publicKey))).toBe(true);
    expect(await fake.tokenBalance(mint.toBase58(), sender.publicKey)).toBe(1_000_000n);
    const to = getAssociatedTokenAddressSync(mint, recipient);

    const signature = await connection.sendRawTransaction(
      await signed(
        sender,
        createAssociatedTokenAccountIdempotentInstruction(sender.publicKey, to, recipient, mint),
        createTransferCheckedInstruction(from, mint, to, sender.publicKey, 250_000n, 6),
      ),
    );
    await waitFor(signature, 'confirmed');

    expect((await getAccount(connection, to)).amount).toBe(250_000n);
    expect((await getAccount(connection, from)).amount).toBe(750_000n);
    expect((await connection.getTokenAccountBalance(to)).value).toMatchObject({
      amount: '250000',
      decimals: 6,
      uiAmount: 0.25,
      uiAmountString: '0.25',
    });
    expect(await fake.tokenBalance(mint, recipient)).toBe(250_000n);
    // The sender paid the fee and the new account's rent.
    const rent = await connection.getMinimumBalanceForRentExemption(165);
    expect(await fake.balance(sender.publicKey)).toBe(
      BigInt(2 * LAMPORTS_PER_SOL - LAMPORTS_PER_SIGNATURE - rent),
    );
  });

  it('airdrops, each one finalized, and serves batches and unknown methods', async () => {
    const owner = Keypair.generate().publicKey;
    const first = await connection.requestAirdrop(owner, LAMPORTS_PER_SOL);
    const second = await connection.requestAirdrop(owner, LAMPORTS_PER_SOL);
    expect(second).not.toBe(first);
    expect(await fake.balance(owner.toBase58())).toBe(BigInt(2 * LAMPORTS_PER_SOL));
    expect((await waitFor(first, 'finalized')).err).toBeNull();

    expect((await rpc('getBlockProduction')).error).toMatchObject({ code: -32601 });
    const res = await fetch(fake.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        { jsonrpc: '2.0', id: 'a', method: 'getHealth' },
        { jsonrpc: '2.0', id: 'b', method: 'getBalance', params: [owner.toBase58()] },
      ]),
    });
    expect(await res.json()).toMatchObject([
      { id: 'a', result: 'ok' },
      { id: 'b', result: { value: 2 * LAMPORTS_PER_SOL } },
    ]);
  });

  it('fails every request during an outage', async () => {
    const owner = await funded(1);
    await fake.outage(true);
    try {
      await expect(connection.getBalance(owner.publicKey)).rejects.toThrow(/503/);
      await expect(connection.getLatestBlockhash()).rejects.toThrow(/503/);
    } finally {
      await fake.outage(false);
    }
    expect(await connection.getBalance(owner.publicKey)).toBe(LAMPORTS_PER_SOL);
  });

  it('drops a send unanswered and unapplied, or unanswered after applying it', async () => {
    const payer = await funded();
    const to = Keypair.generate().publicKey;
    const bytes = await signed(payer, transfer(payer, to, LAMPORTS_PER_SOL));
    const events: SendEvent[] = [];
    fake.onSend((event) => {
      events.push(event);
    });
    try {
      const sentBefore = await fake.sent();
      await fake.sendMode({ before: 'drop', times: 1 });
      await expect(connection.sendRawTransaction(bytes)).rejects.toThrow();
      expect(await fake.sent()).toBe(sentBefore + 1);
      expect(await connection.getBalance(to)).toBe(0);
      const [{ signature }] = events as [SendEvent];
      expect(events).toEqual([{ phase: 'before', signature }]);
      expect((await connection.getSignatureStatuses([signature])).value[0]).toBeNull();
      expect(await fake.landed()).not.toContain(signature);

      // The same bytes still land afterwards, since the dropped request never touched the chain.
      await fake.sendMode({ after: 'drop', times: 1 });
      await expect(connection.sendRawTransaction(bytes)).rejects.toThrow();
      expect(events.slice(1)).toEqual([
        { phase: 'before', signature },
        { phase: 'after', signature },
      ]);
      expect((await waitFor(signature, 'confirmed')).err).toBeNull();
      expect(await connection.getBalance(to)).toBe(LAMPORTS_PER_SOL);
      expect(await fake.landed()).toContain(signature);
      expect((await fake.requests()).sendTransaction).toBeGreaterThanOrEqual(2);
      expect(await fake.sent()).toBe(sentBefore + 2);
    } finally {
      fake.onSend(undefined);
      await fake.sendMode({});
    }
  });

  it('keeps a send mode for `times` requests, or until changed', async () => {
    const payer = await funded();
    const to = Keypair.generate().publicKey;
    const first = await signed(payer, transfer(payer, to, LAMPORTS_PER_SOL / 10));
    try {
      await fake.sendMode({ before: 'drop', times: 2 });
      await expect(connection.sendRawTransaction(first)).rejects.toThrow();
      await expect(connection.sendRawTransaction(first)).rejects.toThrow();
      const signature = await connection.sendRawTransaction(first);
      expect((await waitFor(signature, 'confirmed')).err).toBeNull();

      await fake.sendMode({ before: 'drop' });
      const second = await signed(payer, transfer(payer, to, LAMPORTS_PER_SOL / 5));
      for (let i = 0; i < 3; i++) await expect(connection.sendRawTransaction(second)).rejects.toThrow();
      await fake.sendMode({});
      await waitFor(await connection.sendRawTransaction(second), 'confirmed');
      expect(await connection.getBalance(to)).toBe((3 * LAMPORTS_PER_SOL) / 10);

      await expect(fake.sendMode({ times: 0 })).rejects.toThrow(/positive integer/);
    } finally {
      await fake.sendMode({});
    }
  });

  it('holds each send while its listener runs: before applying it, and after it landed', async () => {
    const payer = await funded();
    const to = Keypair.generate().publicKey;
    const bytes = await signed(payer, transfer(payer, to, LAMPORTS_PER_SOL));
    let answered = false;
    const seen: { phase: string; balance: bigint; answered: boolean }[] = [];
    fake.onSend(async ({ phase }) => {
      await sleep(50);
      seen.push({ phase, balance: await fake.balance(to), answered });
    });
    try {
      const signature = await connection.sendRawTransaction(bytes).finally(() => {
        answered = true;
      });
      expect(await fake.landed()).toContain(signature);
    } finally {
      fake.onSend(undefined);
    }
    expect(seen).toEqual([
      { phase: 'before', balance: 0n, answered: false },
      { phase: 'after', balance: BigInt(LAMPORTS_PER_SOL), answered: false },
    ]);
  });

  it('lets a test kill a client after its transaction landed, before any answer', async () => {
    const payer = await funded();
    const to = Keypair.generate().publicKey;
    const bytes = await signed(payer, transfer(payer, to, LAMPORTS_PER_SOL));
    // A client in its own process that prints the node's answer to its send.
    const client = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const [url, tx] = process.argv.slice(1);
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'sendTransaction', params: [tx, { encoding: 'base64' }] }),
        });
        process.stdout.write(await res.text());`,
        fake.url,
        bytes.toString('base64'),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let output = '';
    client.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      client.once('exit', (_code, signal) => resolve(signal)),
    );
    const phases: string[] = [];
    fake.onSend(async ({ phase }) => {
      phases.push(phase);
      if (phase !== 'after') return;
      client.kill('SIGKILL');
      await exited;
    });
    try {
      expect(await exited).toBe('SIGKILL');
    } finally {
      fake.onSend(undefined);
    }
    expect(phases).toEqual(['before', 'after']);
    expect(output).toBe('');
    const [signature] = Transaction.from(bytes).signatures;
    const landed = bs58.encode(signature?.signature ?? new Uint8Array());
    expect((await waitFor(landed, 'confirmed')).err).toBeNull();
    expect(await connection.getBalance(to)).toBe(LAMPORTS_PER_SOL);
  });
});
