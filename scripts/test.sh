#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing (npm packages, redis-server,
# Chromium), builds, and runs every test. Tests start their own redis-server on free ports and
# never touch a Redis already running on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need_apt[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "missing ${need_apt[*]}: install them (Debian: apt-get install ${need_apt[*]}) and run again" >&2
    exit 1
  fi
fi

npx tsc -p tsconfig.check.json
npx biome check .
npx vitest run "$@"
