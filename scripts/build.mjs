// Compiles TypeScript and copies the web chat's static files beside the compiled channel. It
// builds into a scratch folder and swaps it in, so a running agent or test never sees a
// half-built dist/.
import { execFileSync } from 'node:child_process';
import { cpSync, renameSync, rmSync } from 'node:fs';

const scratch = `.build-${process.pid}`;
try {
  execFileSync(
    process.execPath,
    ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json', '--outDir', scratch],
    {
      stdio: 'inherit',
    },
  );
  cpSync('src/channels/http/public', `${scratch}/channels/http/public`, { recursive: true });
  rmSync('dist', { recursive: true, force: true });
  renameSync(scratch, 'dist');
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
