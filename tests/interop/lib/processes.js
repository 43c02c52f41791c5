// Child processes in process groups of their own, so that each one and everything it starts can be
// ended together, on success, failure, an exception or a signal.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const groups = new Map(); // pid -> name

/** A free TCP port on 127.0.0.1 (the OS picks it; the socket is closed again before use). */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `command` as the leader of a new process group, its output appended to `logFile`.
 * Returns the child and a promise of its exit.
 */
export function startGroup(name, command, args, { logFile, env, cwd, onStderr } = {}) {
  const log = fs.openSync(logFile, 'a');
  // A variable given as undefined is removed from the child's environment.
  const childEnv = { ...process.env, ...env };
  for (const [key, value] of Object.entries(childEnv)) if (value === undefined) delete childEnv[key];
  const child = spawn(command, args, {
    cwd,
    env: childEnv,
    detached: true,
    stdio: ['ignore', log, onStderr ? 'pipe' : log],
  });
  fs.closeSync(log);
  groups.set(child.pid, name);
  if (onStderr) {
    child.stderr.on('data', (chunk) => {
      fs.appendFileSync(logFile, chunk);
      onStderr(chunk.toString());
    });
  }
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      resolve({ code, signal });
    });
    child.on('error', (error) => resolve({ code: -1, signal: null, error }));
  });
  return { child, exited, name };
}

function signalGroups(signal) {
  for (const pid of groups.keys()) {
    try {
      process.kill(-pid, signal);
    } catch {
      // the group has already gone
    }
  }
}

function groupAlive(pid) {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM to every group started here, then SIGKILL to whatever is left after `graceMs`. */
export async function stopAll(graceMs = 4000) {
  signalGroups('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && [...groups.keys()].some(groupAlive)) {
    await sleep(100);
  }
  signalGroups('SIGKILL');
  groups.clear();
}

let installed = false;
/** Makes sure the groups die with this process: normal exit, uncaught errors, SIGINT, SIGTERM, SIGHUP. */
export function killGroupsOnExit() {
  if (installed) return;
  installed = true;
  process.on('exit', () => signalGroups('SIGKILL'));
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      console.error(`interop: ${signal}, stopping every process started`);
      signalGroups('SIGKILL');
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

/** Polls `probe` (an async function returning a truthy value when ready) until ready or `timeoutMs`. */
export async function waitFor(what, probe, { timeoutMs, intervalMs = 250, exited } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  let gone = null;
  exited?.then((result) => {
    gone = result;
  });
  while (Date.now() < deadline) {
    if (gone) throw new Error(`${what}: the process exited (${JSON.stringify(gone)}) before it was ready`);
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    await sleep(intervalMs);
  }
  throw new Error(`${what}: not ready after ${timeoutMs / 1000} s${lastError ? ` (last error: ${lastError.message})` : ''}`);
}
