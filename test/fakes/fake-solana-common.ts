import { createHash } from 'node:crypto';
import bs58 from 'bs58';

/**
 * What both sides of the fake Solana share: the in-process fake (test/fakes/fake-solana.ts) and
 * the client of its process (test/fakes/fake-solana-remote.ts). Kept apart from the fake so that
 * importing these never loads LiteSVM, which must stay out of test workers.
 */

/** Genesis hashes as `getGenesisHash` returns them, to tell clusters apart. */
export const DEVNET_GENESIS_HASH = 'EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG';
export const MAINNET_GENESIS_HASH = '5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d';
/** The fake's own cluster, so code that checks the cluster sees neither devnet nor mainnet. */
export const FAKE_GENESIS_HASH = bs58.encode(createHash('sha256').update('fake-solana genesis').digest());

export const LAMPORTS_PER_SIGNATURE = 5000;
