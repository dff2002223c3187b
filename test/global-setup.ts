import { execFileSync } from 'node:child_process';

/** Process-level tests (kill -9, PM2) run the built agent, so build it once per run. */
export default function setup(): void {
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
}
