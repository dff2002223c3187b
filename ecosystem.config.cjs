// PM2 process file for the built agent: `npm run build && pm2 start ecosystem.config.cjs`.
// CommonJS (.cjs) because PM2 require()s this file and the package is "type": "module".
// Settings (HTTP_PORT, DATA_DIR, OPENAI_*, REDIS_URL, ...) come from the environment of the shell
// that runs `pm2 start`: PM2 copies that environment into the app, then applies `env` below.
// After changing them, `pm2 restart ecosystem.config.cjs --update-env` picks up the new values.
module.exports = {
  apps: [
    {
      name: 'agent',
      script: 'dist/main.js',
      args: 'start',
      // Resolve `script` and relative paths (the default DATA_DIR `data`) against the repository,
      // not against wherever `pm2` happens to be run from.
      cwd: __dirname,
      // One process per server: the default append-only memory (DATA_DIR) has a single writer. For
      // two servers, run this same file on each with REDIS_SENTINELS (or REDIS_URL) and its own
      // NODE_ID and CLUSTER_ADVERTISE_URL (docs/deploy.md); not PM2's cluster mode.
      exec_mode: 'fork',
      instances: 1,
      // The agent calls process.send('ready') once it listens; PM2 shows it `launching` until then
      // (and `pm2 start` waits for it), giving up and marking it online after listen_timeout.
      wait_ready: true,
      listen_timeout: 15_000,
      // On stop/restart PM2 sends SIGINT: the agent releases its platform connections to the other
      // server at once, then drains in-flight turns for up to shutdown.graceMs (default 8000 ms)
      // before closing. This must be longer, or PM2 SIGKILLs it mid-drain.
      kill_timeout: 10_000,
      autorestart: true,
      // Exit code 78 is a configuration error: restarting cannot fix it, so PM2 stops and the
      // error stays at the end of the log instead of scrolling away in a crash loop.
      stop_exit_codes: [78],
      // Restart a crashed agent after 100 ms, growing the delay 1.5x per further crash (PM2 caps it
      // at 15 s) so a crash loop (Redis or disk gone) does not spin; it resets after 30 s of uptime.
      exp_backoff_restart_delay: 100,
      // A leak shows up as slow growth: restart (gracefully) before the host starts swapping.
      max_memory_restart: '512M',
      // Same log files whatever the pm_id (no `-<id>` suffix), each line prefixed with its time.
      merge_logs: true,
      time: true,
      env: {
        NODE_ENV: 'production',
      },
    },
  ],
};
