import type { JobOutcome } from '../../jobs/job-scheduler.js';
import type { Command } from './command.js';

export interface StatusSnapshot {
  agentName: string;
  version: string;
  uptimeSeconds: number;
  providers: { id: string; model: string; state: string }[];
  memoryBackend: 'log' | 'redis';
  /** With Redis: set while it is unreachable or the local write-ahead log holds writes for it. */
  redisOutage?: string;
  /** The platform channels (Discord, Telegram, Slack) and their state. */
  channels: { name: string; state: string }[];
  /** With several servers: each node's state, and which node holds each exclusive connection. */
  cluster?: { nodes: string; leases: string };
}

export function formatUptime(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  return [d ? `${d}d` : '', h ? `${h}h` : '', m ? `${m}m` : '', `${s}s`].filter(Boolean).join(' ');
}

export interface BuiltinCommandDeps {
  status: () => StatusSnapshot;
  /** Per-provider health, latency, traffic, cost and budget, for `/providers`. */
  providersReport: () => Promise<string>;
  /** The maintenance jobs' outcomes, for `/status`. Default: no jobs line. */
  jobs?: () => Promise<JobOutcome[]>;
}

/** One `/status` entry per job: its last outcome, when and where it ran, and its failures in a row. */
export function formatJobs(outcomes: readonly JobOutcome[], now: number): string {
  return outcomes
    .map((o) => {
      if (o.lastRunAt === undefined) return `${o.name} not run yet`;
      const ago = formatUptime(Math.max(0, now - o.lastRunAt) / 1000);
      const where = o.lastNode ? ` on ${o.lastNode}` : '';
      const failure =
        o.lastOutcome === 'failed'
          ? `: ${o.lastError ?? 'unknown error'} (${o.consecutiveFailures} in a row)`
          : '';
      return `${o.name} ${o.lastOutcome ?? 'ran'} ${ago} ago${where}${failure}, ${o.runs} runs`;
    })
    .join('; ');
}

export function createBuiltinCommands({ status, providersReport, jobs }: BuiltinCommandDeps): Command[] {
  const commands: Command[] = [
    {
      name: 'help',
      summary: 'list the commands',
      run: () => ({
        text: ['Commands:', ...commands.map((c) => `/${c.name} - ${c.summary}`)].join('\n'),
      }),
    },
    {
      name: 'status',
      summary: 'providers, channels, memory backend, maintenance jobs, uptime and version',
      run: async () => {
        const s = status();
        const jobsLine = jobs
          ? await jobs().then(
              (outcomes) => (outcomes.length > 0 ? `jobs: ${formatJobs(outcomes, Date.now())}` : undefined),
              (error: unknown) => `jobs: unavailable (${(error as Error)?.message ?? String(error)})`,
            )
          : undefined;
        const providers = s.providers.map((p) =>
          p.id === 'none' ? 'none configured' : `${p.id} (${p.model}) ${p.state}`,
        );
        return {
          text: [
            `${s.agentName} v${s.version}`,
            `providers: ${providers.join('; ')}`,
            `memory: ${s.memoryBackend === 'redis' ? 'Redis' : 'local append-only log'}${s.redisOutage ? ` (${s.redisOutage})` : ''}`,
            `channels: ${['http ok', ...s.channels.map((c) => `${c.name} ${c.state}`)].join('; ')}`,
            ...(s.cluster ? [`nodes: ${s.cluster.nodes}`, `connections: ${s.cluster.leases}`] : []),
            ...(jobsLine ? [jobsLine] : []),
            `uptime: ${formatUptime(s.uptimeSeconds)}`,
          ].join('\n'),
        };
      },
    },
    {
      name: 'providers',
      summary: 'each provider: circuit, cooldown, latency, requests and cost today, budget left',
      run: async () => ({ text: await providersReport() }),
    },
    {
      name: 'reset',
      summary: 'start a fresh conversation (history is kept, but no longer sent as context)',
      run: () => ({
        text: 'Context cleared. The next message starts a fresh conversation.',
        resetContext: true,
      }),
    },
  ];
  return commands;
}
