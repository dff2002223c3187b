// Compiles TypeScript to dist/ and copies the web chat's static files beside the compiled channel.
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], {
  stdio: 'inherit',
});
cpSync('src/channels/http/public', 'dist/channels/http/public', { recursive: true });
