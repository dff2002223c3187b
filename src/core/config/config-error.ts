/** One problem with the configuration: where it is, what was found, and how to fix it. */
export interface ConfigProblem {
  /** Dotted path in the configuration, e.g. `http.port`. */
  key: string;
  /** Where the value came from: an environment variable or the config file. */
  source: string | undefined;
  /** The offending value, already masked when it is a secret. */
  value: string | undefined;
  problem: string;
  fix: string;
}

export class ConfigError extends Error {
  readonly code = 'config_invalid';
  readonly problems: readonly ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    super(formatProblems(problems));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function isConfigError(error: unknown): error is ConfigError {
  return error instanceof ConfigError;
}

function formatProblems(problems: ConfigProblem[]): string {
  const lines = problems.map((p) => {
    const from = p.source ? ` (from ${p.source})` : '';
    const value = p.value === undefined ? '' : ` = ${p.value}`;
    return `  - ${p.key}${from}${value}: ${p.problem}\n    fix: ${p.fix}`;
  });
  return `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}`;
}
