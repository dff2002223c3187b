import type { SlackConfig } from '../channels-config.js';

/** The settings of `channels.slack` that `renewSecrets` takes without a restart. */
export type SlackSecretName = 'botToken' | 'signingSecret' | 'appToken';

/** The secret values an adapter runs on. */
export interface SlackSecrets {
  botToken: string;
  /** HTTP mode only. */
  signingSecret?: string;
  /** Socket Mode only. */
  appToken?: string;
}

/**
 * The secrets of `next` that differ from `current`, among those `mode` uses (a signing secret
 * means nothing to Socket Mode, an app token nothing to HTTP mode). A secret `next` leaves out is
 * not a change: the mode that needs it cannot lose it without a restart.
 */
export function changedSecrets(
  current: Readonly<SlackSecrets>,
  next: Readonly<SlackConfig>,
  mode: SlackConfig['mode'],
): Partial<SlackSecrets> {
  const changed: Partial<SlackSecrets> = {};
  if (next.botToken !== current.botToken) changed.botToken = next.botToken;
  if (mode === 'http' && next.signingSecret !== undefined && next.signingSecret !== current.signingSecret)
    changed.signingSecret = next.signingSecret;
  if (mode === 'socket' && next.appToken !== undefined && next.appToken !== current.appToken)
    changed.appToken = next.appToken;
  return changed;
}

const SECRET_KEYS: ReadonlySet<string> = new Set<SlackSecretName>(['botToken', 'signingSecret', 'appToken']);

/** Names of the other settings that differ: they apply only after a restart. */
export function changedSettings(current: Readonly<SlackConfig>, next: Readonly<SlackConfig>): string[] {
  const keys = new Set([...Object.keys(current), ...Object.keys(next)]);
  return [...keys]
    .filter((key) => !SECRET_KEYS.has(key))
    .filter((key) => current[key as keyof SlackConfig] !== next[key as keyof SlackConfig])
    .sort();
}

export type SlackRenewErrorCode =
  /** Slack refused the new app token (revoked, mistyped, a bot token in its place). */
  | 'slack_app_token_refused'
  /** No Socket Mode connection could be opened with the new app token (Slack unreachable). */
  | 'slack_app_token_unverified';

/**
 * A rotated secret that could not be taken. The adapter keeps running on the secret it had, so
 * calling `renewSecrets` again retries. Messages name the secret, never its value.
 */
export class SlackRenewError extends Error {
  readonly isSlackRenewError = true;
  readonly code: SlackRenewErrorCode;
  readonly secret: SlackSecretName;

  constructor(code: SlackRenewErrorCode, secret: SlackSecretName, message: string) {
    // No `cause`: the Slack client's errors may quote the request they came from.
    super(message);
    this.name = 'SlackRenewError';
    this.code = code;
    this.secret = secret;
  }
}

export function isSlackRenewError(error: unknown): error is SlackRenewError {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { isSlackRenewError?: unknown }).isSlackRenewError === true
  );
}
