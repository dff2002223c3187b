import { webApi } from '@slack/bolt';
import { DiscordAPIError, REST, Routes } from 'discord.js';
import { Api, GrammyError, HttpError } from 'grammy';
import { pino } from 'pino';
import type {
  ChannelsConfig,
  DiscordConfig,
  SlackConfig,
  TelegramConfig,
} from '../../channels/channels-config.js';
// The token errors the Slack adapter treats as configuration, not an outage.
import { BAD_CONFIG_ERRORS } from '../../channels/slack/slack-errors.js';
import { slackLogger } from '../../channels/slack/slack-logger.js';
import { asGrammySignal } from '../../channels/telegram/abort-signals.js';
import type { Finding } from '../doctor.js';
import { networkCode, safeOrigin, scrub } from './safe-url.js';

const TIMEOUT_MS = 10_000;

/**
 * Each enabled chat platform's token, with one cheap authenticated call through the library and
 * API root its adapter uses: Telegram `getMe`, Discord `GET /users/@me`, Slack `auth.test` (and
 * `apps.connections.open` with the app token in Socket Mode). Findings never show a token.
 */
export async function checkPlatforms(channels: Readonly<ChannelsConfig>): Promise<Finding[]> {
  const checks: Promise<Finding[]>[] = [];
  if (channels.telegram?.enabled) checks.push(checkTelegram(channels.telegram).then((f) => [f]));
  if (channels.discord?.enabled) checks.push(checkDiscord(channels.discord).then((f) => [f]));
  if (channels.slack?.enabled) checks.push(checkSlack(channels.slack));
  return (await Promise.all(checks)).flat();
}

function unreachable(check: string, what: string, url: string, error: unknown, fix: string): Finding {
  const code = networkCode(error);
  return {
    check,
    ok: false,
    severity: 'error',
    detail: `cannot reach ${what} at ${safeOrigin(url)}${code ? ` (${code})` : ''}`,
    fix,
  };
}

async function checkTelegram(config: Readonly<TelegramConfig>): Promise<Finding> {
  const check = 'telegram';
  const api = new Api(config.botToken, { apiRoot: config.apiRoot, timeoutSeconds: TIMEOUT_MS / 1000 });
  try {
    const me = await api.getMe(asGrammySignal(AbortSignal.timeout(TIMEOUT_MS)));
    return {
      check,
      ok: true,
      severity: 'info',
      detail: `bot @${me.username} (id ${me.id}) answers getMe at ${safeOrigin(config.apiRoot)}`,
    };
  } catch (error) {
    if (error instanceof GrammyError) {
      if (error.error_code === 401 || error.error_code === 404) {
        return {
          check,
          ok: false,
          severity: 'error',
          detail: `Telegram refused the bot token (getMe: ${error.error_code} ${error.description})`,
          fix:
            error.error_code === 401
              ? 'set TELEGRAM_BOT_TOKEN (or TELEGRAM_BOT_TOKEN_FILE) to the token @BotFather gave the bot; /revoke there issues a new one'
              : 'set TELEGRAM_BOT_TOKEN to the token @BotFather gave the bot, and check TELEGRAM_API_ROOT is a Bot API server',
        };
      }
      return {
        check,
        ok: false,
        severity: 'error',
        detail: scrub(`getMe failed: ${error.error_code} ${error.description}`, [config.botToken]),
        fix: 'check the Bot API server at TELEGRAM_API_ROOT, or try again later',
      };
    }
    if (error instanceof HttpError || networkCode(error) !== undefined) {
      return unreachable(
        check,
        'the Telegram Bot API',
        config.apiRoot,
        error,
        'check the network path to the Bot API (firewall, proxy, DNS), or TELEGRAM_API_ROOT',
      );
    }
    return failed(check, error, [config.botToken], 'check TELEGRAM_API_ROOT and the network path');
  }
}

async function checkDiscord(config: Readonly<DiscordConfig>): Promise<Finding> {
  const check = 'discord';
  const rest = new REST({
    api: config.apiRoot,
    retries: 0,
    timeout: TIMEOUT_MS,
    rejectOnRateLimit: () => true,
    // No sweeper timers: this client makes one call.
    handlerSweepInterval: 0,
    hashSweepInterval: 0,
  }).setToken(config.botToken);
  try {
    const me = (await rest.get(Routes.user())) as { id?: string; username?: string };
    return {
      check,
      ok: true,
      severity: 'info',
      detail: `bot ${me.username ?? '?'} (id ${me.id ?? '?'}) answers GET /users/@me at ${safeOrigin(config.apiRoot)}`,
    };
  } catch (error) {
    if (error instanceof DiscordAPIError) {
      if (error.status === 401) {
        return {
          check,
          ok: false,
          severity: 'error',
          detail: 'Discord refused the bot token (GET /users/@me: 401 Unauthorized)',
          fix: 'set DISCORD_BOT_TOKEN (or DISCORD_BOT_TOKEN_FILE) to the bot token from the Developer Portal (Bot, Reset Token)',
        };
      }
      return {
        check,
        ok: false,
        severity: 'error',
        detail: scrub(`GET /users/@me failed: ${error.status} ${error.message}`, [config.botToken]),
        fix: 'check DISCORD_API_ROOT and the bot in the Developer Portal, or try again later',
      };
    }
    if (networkCode(error) !== undefined) {
      return unreachable(
        check,
        'the Discord API',
        config.apiRoot,
        error,
        'check the network path to Discord (firewall, proxy, DNS), or DISCORD_API_ROOT',
      );
    }
    return failed(check, error, [config.botToken], 'check DISCORD_API_ROOT and the network path');
  }
}

async function checkSlack(config: Readonly<SlackConfig>): Promise<Finding[]> {
  const secrets = [config.botToken, config.appToken, config.signingSecret];
  const findings = [
    await slackCall(config, {
      check: 'slack',
      token: config.botToken,
      method: 'auth.test',
      tokenFix:
        'set SLACK_BOT_TOKEN (or SLACK_BOT_TOKEN_FILE) to the Bot User OAuth Token (xoxb-...) from the app\'s "OAuth & Permissions" page',
      secrets,
      ok: (answer) =>
        `bot ${String(answer.user ?? '?')} (${String(answer.user_id ?? '?')}) in ${String(answer.team ?? '?')} answers auth.test at ${safeOrigin(config.apiUrl)}`,
    }),
  ];
  if (config.mode === 'socket' && config.appToken !== undefined) {
    // Opens a Socket Mode ticket and leaves it unused: it expires on its own; its URL is not shown.
    findings.push(
      await slackCall(config, {
        check: 'slack app token',
        token: config.appToken,
        method: 'apps.connections.open',
        tokenFix:
          'set SLACK_APP_TOKEN (or SLACK_APP_TOKEN_FILE) to an app-level token (xapp-...) with the connections:write scope, from the app\'s "Basic Information" page',
        secrets,
        ok: () => `apps.connections.open accepts the app token at ${safeOrigin(config.apiUrl)} (Socket Mode)`,
      }),
    );
  }
  return findings;
}

async function slackCall(
  config: Readonly<SlackConfig>,
  call: {
    check: string;
    token: string;
    method: 'auth.test' | 'apps.connections.open';
    tokenFix: string;
    secrets: (string | undefined)[];
    ok: (answer: Record<string, unknown>) => string;
  },
): Promise<Finding> {
  const client = new webApi.WebClient(call.token, {
    slackApiUrl: config.apiUrl,
    logger: slackLogger(pino({ level: 'silent' })),
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: TIMEOUT_MS,
  });
  try {
    const answer = (await client.apiCall(call.method)) as unknown as Record<string, unknown>;
    return { check: call.check, ok: true, severity: 'info', detail: call.ok(answer) };
  } catch (error) {
    const { code, data, statusCode } = error as {
      code?: unknown;
      data?: { error?: unknown };
      statusCode?: unknown;
    };
    if (code === webApi.ErrorCode.PlatformError) {
      const slackError = String(data?.error ?? 'unknown_error');
      return {
        check: call.check,
        ok: false,
        severity: 'error',
        detail: `Slack refused the ${call.method === 'auth.test' ? 'bot' : 'app'} token (${call.method}: ${scrub(slackError, call.secrets)})`,
        fix: BAD_CONFIG_ERRORS.has(slackError)
          ? call.tokenFix
          : `see https://api.slack.com/methods/${call.method} for "${scrub(slackError, call.secrets)}"`,
      };
    }
    if (code === webApi.ErrorCode.RequestError) {
      return unreachable(
        call.check,
        'the Slack Web API',
        config.apiUrl,
        error,
        'check the network path to Slack (firewall, proxy, DNS), or SLACK_API_URL',
      );
    }
    if (code === webApi.ErrorCode.HTTPError) {
      return {
        check: call.check,
        ok: false,
        severity: 'error',
        detail: `${call.method} answered HTTP ${String(statusCode)} at ${safeOrigin(config.apiUrl)}`,
        fix: 'check SLACK_API_URL (it ends with /api/), or try again later',
      };
    }
    return failed(call.check, error, call.secrets, 'check SLACK_API_URL and the network path');
  }
}

function failed(check: string, error: unknown, secrets: (string | undefined)[], fix: string): Finding {
  const message = error instanceof Error ? error.message : String(error);
  return { check, ok: false, severity: 'error', detail: scrub(message, secrets).slice(0, 300), fix };
}
