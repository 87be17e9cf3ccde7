// redis-server and gateways on free loopback ports, started and awaited
// until they answer.

import { existsSync } from 'node:fs';
import net from 'node:net';
import { CLIENT_DIR, GATEWAY_BIN } from './paths.js';
import { freePort } from './ports.js';
import { isRunning, start, stop } from './processes.js';
import { waitFor } from './wait.js';

const START_TRIES = 3;

/** Starts a process on a fresh port, retrying on another port if it dies while starting. */
async function startOnFreePort(name, launch, ready) {
  for (let attempt = 1; ; attempt += 1) {
    const port = await freePort();
    const proc = launch(port);
    let outcome;
    try {
      outcome = await waitFor(async () => (isRunning(proc) ? (await ready(port)) && 'ready' : 'exited'),
        { what: `${name} on port ${port}`, timeoutMs: 15000, intervalMs: 100 });
    } catch (error) {
      outcome = error.message;
    }
    if (outcome === 'ready') return { proc, port };
    await stop(proc, 1000);
    if (attempt === START_TRIES) throw new Error(`${name} did not start (${outcome}; log: ${proc.logPath})`);
  }
}

function redisPing(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.setTimeout(1000, () => socket.destroy());
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      data += chunk;
      if (data.includes('\r\n')) {
        socket.end();
        resolve(data.startsWith('+PONG'));
      }
    });
    socket.on('error', () => resolve(false));
    socket.on('close', () => resolve(false));
  });
}

export async function startRedis() {
  const launch = (port) => start('redis', 'redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
  ]);
  const started = await startOnFreePort('redis-server', launch, redisPing);
  const { port } = started;
  let { proc } = started;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: () => stop(proc),
    /** Same port again, empty (no persistence). */
    async restart() {
      proc = launch(port);
      await waitFor(() => redisPing(port), { what: `redis-server back on ${port}`, timeoutMs: 10000 });
    },
  };
}

async function httpStatus(url) {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return response.status;
  } catch {
    return 0;
  }
}

/** args: more gateway flags, e.g. ['--jwt-secret', S]. */
export async function startGateway({ id, redisUrl, args = [] }) {
  if (!existsSync(GATEWAY_BIN)) {
    throw new Error(`gateway binary not found at ${GATEWAY_BIN}: build it, or set GATEWAY_BIN`);
  }
  const launch = (port) => start(`gateway-${id}`, GATEWAY_BIN, [
    '--listen', `127.0.0.1:${port}`, '--id', id, '--redis', redisUrl, '--client-dir', CLIENT_DIR,
    '--shutdown-timeout', '2s', ...args,
  ]);
  const ready = async (port) => await httpStatus(`http://127.0.0.1:${port}/readyz`) === 200;
  const started = await startOnFreePort(`gateway ${id}`, launch, ready);
  const { port } = started;
  let { proc } = started;
  return {
    id,
    port,
    url: `http://127.0.0.1:${port}`,
    ready: () => ready(port),
    stop: () => stop(proc),
    /** Same port again, so that its browsers find it where they left it. */
    async restart() {
      proc = launch(port);
      await waitFor(() => ready(port), { what: `gateway ${id} back on ${port} (log: ${proc.logPath})`, timeoutMs: 15000 });
    },
  };
}
