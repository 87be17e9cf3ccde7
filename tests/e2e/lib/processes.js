// Child processes of the tests (redis-server, gateways). Every one started
// here is killed by PID when it is stopped, when the test process exits, or
// when it is interrupted, so a failing run leaves nothing behind.

import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { LOGS } from './paths.js';

const running = new Set();

function killAll() {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
  running.clear();
}

process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    killAll();
    process.exit(128 + constants.signals[signal]);
  });
}

/** Starts a program with its output in artifacts/logs/<name>.log. */
export function start(name, command, args) {
  mkdirSync(LOGS, { recursive: true });
  const logPath = path.join(LOGS, `${name}.log`);
  const log = createWriteStream(logPath, { flags: 'a' });
  log.write(`\n--- ${new Date().toISOString()} ${command} ${args.join(' ')}\n`);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
    child.on('error', (error) => {
      running.delete(child);
      resolve({ code: null, signal: null, error });
    });
  });
  running.add(child);
  return { child, exited, logPath, name };
}

/** SIGTERM, then SIGKILL if it is still there after `graceMs`. Resolves once it is gone. */
export async function stop(proc, graceMs = 8000) {
  if (!running.has(proc.child)) return proc.exited;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
  const result = await proc.exited;
  clearTimeout(timer);
  return result;
}

export function isRunning(proc) {
  return running.has(proc.child);
}
