#!/usr/bin/env node
// Runs the interop tests.
//
// Locally (the default): starts firebase-tools' Auth emulator, two emulator hosts of this product on
// loopback (one trusting the Auth emulator, one without it, as a user runs it), a stand-in for
// Google's token certificate endpoint and headless Chromium, waits until both indexes are deployed,
// runs `node --test` against them and ends every process it started, whatever happens.
//
// Against a deployed installation: set RIS_PROJECT_ID and RIS_API_KEY (see README.md, "Checking an
// installation"); only the SDK tests run, against Google.
//
// Writes artifacts/ (logs, results.tap, summary.json, screenshots) and ends with
// "interop: N passed, N failed, N skipped".
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, killGroupsOnExit, startGroup, stopAll, waitFor } from './lib/processes.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const artifacts = path.join(here, 'artifacts');
const logs = path.join(artifacts, 'logs');
const deployed = Boolean(process.env.RIS_PROJECT_ID);
const timings = [];
const started = Date.now();

function phase(name, since) {
  const seconds = (Date.now() - since) / 1000;
  timings.push([name, seconds]);
  console.error(`interop: ${name} ${seconds.toFixed(1)} s`);
}

function testFiles() {
  const requested = process.argv.slice(2);
  if (requested.length) return requested.map((f) => path.resolve(f));
  const all = fs.readdirSync(path.join(here, 'test')).filter((f) => f.endsWith('.test.js')).sort();
  return all.filter((f) => !deployed || f === 'sdk.test.js').map((f) => path.join(here, 'test', f));
}

async function getJson(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function tail(file, lines = 40) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** A throwaway RSA key and self-signed certificate: the stand-in for Google's securetoken keys. */
function makeSigningKey(dir) {
  const key = path.join(dir, 'signing-key.pem');
  const cert = path.join(dir, 'signing-cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-subj', '/CN=interop-securetoken', '-days', '2'], { stdio: 'ignore' });
  return { keyFile: key, certPem: fs.readFileSync(cert, 'utf8'), kid: 'interop-test-key' };
}

/** Serves {kid: certificate PEM} like Google's x509 endpoint, on loopback. */
async function serveCertificates(kid, certPem) {
  const port = await freePort();
  const server = http.createServer((request, response) => {
    response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=3600' });
    response.end(JSON.stringify({ [kid]: certPem }));
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  server.unref();
  return `http://127.0.0.1:${port}/certs`;
}

async function startAuthEmulator(work, projectId) {
  const [port, hub, logging] = [await freePort(), await freePort(), await freePort()];
  const dir = path.join(work, 'auth-emulator');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'firebase.json'), JSON.stringify({
    emulators: {
      auth: { host: '127.0.0.1', port },
      hub: { host: '127.0.0.1', port: hub },
      logging: { host: '127.0.0.1', port: logging },
      ui: { enabled: false },
    },
  }, null, 2));
  const cli = path.join(here, 'node_modules/firebase-tools/lib/bin/firebase.js');
  const proc = startGroup('auth emulator', process.execPath, [cli, 'emulators:start', '--only', 'auth', '--project', projectId], {
    cwd: dir,
    logFile: path.join(logs, 'auth-emulator.log'),
    env: { FIREBASE_CLI_DISABLE_UPDATE_CHECK: 'true', FIREBASE_EMULATORS_PATH: dir, CI: 'true' },
  });
  const host = `127.0.0.1:${port}`;
  const ready = waitFor('auth emulator', () => getJson(`http://${host}/emulator/v1/projects/${projectId}/config`),
    { timeoutMs: 120_000, intervalMs: 500, exited: proc.exited });
  return { host, ready };
}

function emulatorDll() {
  const dll = process.env.RIS_EMULATOR_DLL ?? path.join(repo, 'emulator/bin/Release/net10.0/ris-emulator.dll');
  if (!fs.existsSync(dll)) {
    throw new Error(`${dll} is missing: build first with 'dotnet build ReverseImageSearch.sln -c Release' (tests/run.sh does)`);
  }
  return dll;
}

function startHost(name, args, env) {
  const port = args.port;
  const cli = ['serve', '--data', args.data, '--port', String(port), '--host', '127.0.0.1'];
  if (args.images) cli.push('--images', args.images);
  const childEnv = { ...env, DOTNET_NOLOGO: '1', DOTNET_CLI_TELEMETRY_OPTOUT: '1' };
  const proc = startGroup(name, 'dotnet', [emulatorDll(), ...cli], {
    cwd: repo,
    logFile: path.join(logs, `${name.replaceAll(' ', '-')}.log`),
    env: childEnv,
  });
  const origin = `http://127.0.0.1:${port}`;
  const listening = waitFor(`${name} listening`, () => getJson(`${origin}/api/status`),
    { timeoutMs: 120_000, exited: proc.exited });
  const deployedIndex = listening.then(() => waitFor(`${name} index deployed`, async () => {
    const status = await getJson(`${origin}/api/status`);
    if (status.error) throw Object.assign(new Error(`${name}: ${JSON.stringify(status.error)}`), { fatal: true });
    return status.indexStatus === 'INDEX_DEPLOYED' && status.pendingTasks === 0 ? status : null;
  }, { timeoutMs: 300_000, intervalMs: 500, exited: proc.exited }));
  deployedIndex.catch(() => {}); // awaited later; a failure before then is reported by `listening`
  return { origin, listening, deployedIndex, proc };
}

async function startChromium(work) {
  const executable = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!fs.existsSync(executable)) {
    throw new Error(`${executable} is missing: install the Debian packages chromium and chromium-driver (tests/run.sh does, as root)`);
  }
  const profile = fs.mkdtempSync(path.join(work, 'chromium-profile-'));
  let resolveUrl;
  const wsUrl = new Promise((resolve) => {
    resolveUrl = resolve;
  });
  let buffered = '';
  const proc = startGroup('chromium', executable, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage', `--user-data-dir=${profile}`,
    '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0', 'about:blank',
  ], {
    logFile: path.join(logs, 'chromium.log'),
    onStderr: (text) => {
      buffered += text;
      const match = /DevTools listening on (ws:\/\/\S+)/.exec(buffered);
      if (match) resolveUrl(match[1]);
    },
  });
  const url = await Promise.race([
    wsUrl,
    proc.exited.then((r) => { throw new Error(`chromium exited before it listened: ${JSON.stringify(r)}`); }),
    new Promise((_, reject) => setTimeout(() => reject(new Error('chromium did not open its DevTools port within 60 s')), 60_000).unref()),
  ]);
  return url;
}

function parseTap(file) {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return {
    passed: count('pass'),
    failed: count('fail') + count('cancelled'),
    skipped: count('skipped') + count('todo'),
  };
}

async function runTests(files, env) {
  const tap = path.join(artifacts, 'results.tap');
  fs.rmSync(tap, { force: true });
  const proc = startGroup('node --test', process.execPath, [
    '--test', '--test-concurrency=1',
    '--test-reporter=spec', '--test-reporter-destination=stdout',
    '--test-reporter=tap', `--test-reporter-destination=${tap}`,
    ...files,
  ], { cwd: here, env, logFile: path.join(logs, 'node-test.log') });
  // The spec report goes to the log file; show it too.
  const { code } = await proc.exited;
  process.stdout.write(tail(path.join(logs, 'node-test.log'), 10_000));
  return { code, ...parseTap(tap) };
}

async function main() {
  killGroupsOnExit();
  fs.rmSync(logs, { recursive: true, force: true });
  fs.mkdirSync(logs, { recursive: true });
  const files = testFiles();
  const env = { RIS_INTEROP_ARTIFACTS: artifacts };
  let hosts = [];

  if (deployed) {
    console.error(`interop: checking the deployed installation in project ${process.env.RIS_PROJECT_ID}`);
  } else {
    const projectId = process.env.PROJECT_ID ?? 'demo-reverse-image-search';
    const location = process.env.LOCATION ?? 'us-central1';
    const instanceId = process.env.EXT_INSTANCE_ID ?? 'storage-reverse-image-search';
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ris-interop-'));
    process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
    const base = { PROJECT_ID: projectId, LOCATION: location, EXT_INSTANCE_ID: instanceId };

    let since = Date.now();
    const signing = makeSigningKey(work);
    const certificatesUrl = await serveCertificates(signing.kid, signing.certPem);
    const auth = await startAuthEmulator(work, projectId);

    // Host "auth": trusts the Auth emulator's tokens; cosine distance, so an identical image is at 0.
    // It draws the sample images into its data folder before it listens.
    const authData = path.join(work, 'data-auth');
    const hostAuth = startHost('host with auth emulator', { data: authData, port: await freePort() }, {
      ...base, FIREBASE_AUTH_EMULATOR_HOST: auth.host, DISTANCE_MEASURE: 'COSINE_DISTANCE',
      FIREBASE_ID_TOKEN_CERTIFICATES_URL: certificatesUrl,
    });
    await hostAuth.listening;
    const images = path.join(authData, 'sample-images');

    // Host "plain": as a user runs it (no Auth emulator, default DOT_PRODUCT_DISTANCE); Google's
    // certificate endpoint replaced by the loopback stand-in so that no request leaves the machine.
    const hostPlain = startHost('host without auth emulator', { data: path.join(work, 'data-plain'), images, port: await freePort() }, {
      ...base, FIREBASE_AUTH_EMULATOR_HOST: undefined, FIREBASE_ID_TOKEN_CERTIFICATES_URL: certificatesUrl,
    });
    hosts = [hostAuth, hostPlain];
    const needsBrowser = files.some((f) => f.endsWith('browser.test.js'));
    const chromium = needsBrowser ? startChromium(work) : Promise.resolve('');
    chromium.catch(() => {});

    const [authStatus, plainStatus] = await Promise.all([hostAuth.deployedIndex, hostPlain.deployedIndex]);
    phase('index deployed on both hosts', since);
    since = Date.now();
    await auth.ready;
    phase('auth emulator ready (after the hosts)', since);
    since = Date.now();
    const cdpUrl = await chromium;
    if (needsBrowser) phase('chromium ready (after the auth emulator)', since);
    console.error(`interop: ${authStatus.tasks?.totalLength ?? '?'} images indexed on each host`);
    void plainStatus;

    Object.assign(env, {
      RIS_LOCAL: '1',
      RIS_PROJECT_ID: projectId,
      RIS_REGION: location,
      RIS_EXT_INSTANCE_ID: instanceId,
      RIS_API_KEY: 'demo-api-key',
      RIS_AUTH_EMULATOR_HOST: auth.host,
      RIS_FUNCTIONS_ORIGIN: hostAuth.origin,
      RIS_DISTANCE_MEASURE: 'COSINE_DISTANCE',
      RIS_PLAIN_ORIGIN: hostPlain.origin,
      RIS_PLAIN_DISTANCE_MEASURE: 'DOT_PRODUCT_DISTANCE',
      RIS_IMAGES_DIR: images,
      RIS_SIGNING_KEY_FILE: signing.keyFile,
      RIS_SIGNING_KID: signing.kid,
      RIS_CDP_URL: cdpUrl,
    });
  }

  const since = Date.now();
  const result = await runTests(files, env);
  phase('node --test', since);
  timings.push(['total', (Date.now() - started) / 1000]);
  fs.writeFileSync(path.join(artifacts, 'summary.json'), JSON.stringify({ ...result, timings: Object.fromEntries(timings) }, null, 2));
  if (result.code !== 0 || result.failed > 0) {
    for (const name of fs.readdirSync(logs).filter((f) => f !== 'node-test.log')) {
      console.error(`\n--- last lines of artifacts/logs/${name} ---\n${tail(path.join(logs, name))}`);
    }
  }
  console.log(`interop: ${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped`);
  void hosts;
  return result.code === 0 && result.failed === 0 && result.passed > 0 ? 0 : 1;
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  console.error(`interop: ${error.stack ?? error}`);
  for (const name of fs.existsSync(logs) ? fs.readdirSync(logs) : []) {
    console.error(`\n--- last lines of artifacts/logs/${name} ---\n${tail(path.join(logs, name))}`);
  }
  fs.mkdirSync(artifacts, { recursive: true });
  fs.writeFileSync(path.join(artifacts, 'summary.json'), JSON.stringify({ passed: 0, failed: 1, skipped: 0, error: String(error) }));
  console.log('interop: 0 passed, 1 failed, 0 skipped');
} finally {
  await stopAll();
}
process.exit(exitCode);
