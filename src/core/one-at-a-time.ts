/**
 * `task`, made to run one call at a time: each call starts once the one before it has settled
 * (a failure does not stop the next). For renewals, where two overlapping ones could each undo
 * the other's work.
 */
export function oneAtATime<Args extends unknown[], Result>(
  task: (...args: Args) => Promise<Result>,
): (...args: Args) => Promise<Result> {
  let last: Promise<unknown> = Promise.resolve();
  return (...args) => {
    const run = last.then(() => task(...args));
    last = run.catch(() => undefined);
    return run;
  };
}
