import {
  createAssociatedTokenAccountIdempotentInstruction,
  createTransferCheckedInstruction,
  getAssociatedTokenAddressSync,
} from '@solana/spl-token';
import { PublicKey, SystemProgram, Transaction, TransactionInstruction } from '@solana/web3.js';
import bs58 from 'bs58';
import type { BlockhashInfo } from './rpc/solana-rpc.js';
import type { TransferIntent } from './transfer-intent.js';
import type { WalletSigner } from './wallet-signer.js';

const MEMO_PROGRAM_ID = new PublicKey('MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr');

export interface SignedBytes {
  signature: string;
  bytes: Uint8Array;
}

/**
 * Builds and signs the one transaction an intent stands for. A memo names the intent, so two
 * intents for the same amount to the same recipient never produce identical bytes, and the
 * chain itself says which intent a transfer belongs to.
 */
export async function signTransfer(
  intent: TransferIntent,
  signer: WalletSigner,
  blockhash: BlockhashInfo,
): Promise<SignedBytes> {
  const owner = new PublicKey(await signer.publicKey());
  const recipient = new PublicKey(intent.recipient);
  const amount = BigInt(intent.amount);
  const transaction = new Transaction({
    feePayer: owner,
    blockhash: blockhash.blockhash,
    lastValidBlockHeight: blockhash.lastValidBlockHeight,
  });
  if (intent.mint === undefined) {
    transaction.add(SystemProgram.transfer({ fromPubkey: owner, toPubkey: recipient, lamports: amount }));
  } else {
    const mint = new PublicKey(intent.mint);
    const source = getAssociatedTokenAddressSync(mint, owner, true);
    const destination = getAssociatedTokenAddressSync(mint, recipient, true);
    transaction.add(
      // Creates the recipient's token account only when it is missing; a no-op otherwise.
      createAssociatedTokenAccountIdempotentInstruction(owner, destination, recipient, mint),
      // The checked form makes the runtime verify the mint and its decimals as well.
      createTransferCheckedInstruction(source, mint, destination, owner, amount, intent.decimals),
    );
  }
  transaction.add(
    new TransactionInstruction({
      programId: MEMO_PROGRAM_ID,
      keys: [{ pubkey: owner, isSigner: true, isWritable: false }],
      data: Buffer.from(`intent:${intent.id}`, 'utf8'),
    }),
  );
  const signature = await signer.signMessage(transaction.serializeMessage());
  transaction.addSignature(owner, Buffer.from(signature));
  if (!transaction.verifySignatures())
    throw new Error('the signer returned a signature that does not verify');
  const first = transaction.signature;
  if (!first) throw new Error('the signed transaction has no signature');
  return { signature: bs58.encode(first), bytes: transaction.serialize() };
}
