// The "Checking an installation" path (README.md) in CI: test/sdk.test.js configured only by the
// variables a user sets for a deployed project, with a test user, pointed at the local Auth
// emulator and emulator host instead of Google.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { local, target } from '../lib/target.js';

const here = path.dirname(fileURLToPath(import.meta.url));

test('sdk.test.js configured as for a deployed project, with an email/password test user', { skip: !local && 'local only' }, async () => {
  const t = target();
  const email = `interop-${Date.now()}@example.com`;
  const password = 'interop-password-1';
  const signUp = await fetch(`http://${t.authEmulatorHost}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=${t.apiKey}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password, returnSecureToken: true }),
  });
  assert.equal(signUp.status, 200, await signUp.text());

  const images = [t.stored[5], t.stored[30]];
  const env = { ...process.env };
  // Only what a user sets; NODE_TEST_CONTEXT would make the inner runner report to this one.
  for (const key of Object.keys(env)) if (key.startsWith('RIS_') || key === 'NODE_TEST_CONTEXT') delete env[key];
  Object.assign(env, {
    RIS_PROJECT_ID: t.projectId,
    RIS_API_KEY: t.apiKey,
    RIS_REGION: t.region,
    RIS_EXT_INSTANCE_ID: t.instanceId,
    RIS_TEST_EMAIL: email,
    RIS_TEST_PASSWORD: password,
    RIS_QUERY_IMAGES: images.map((i) => i.file).join(','),
    RIS_QUERY_OBJECTS: images.map((i) => i.id).join(','),
    RIS_DISTANCE_MEASURE: t.distanceMeasure,
    RIS_FUNCTIONS_ORIGIN: t.functionsOrigin,
    RIS_AUTH_EMULATOR_HOST: t.authEmulatorHost,
  });
  const run = spawnSync(process.execPath, ['--test', '--test-reporter=tap', path.join(here, 'sdk.test.js')], {
    env, encoding: 'utf8', timeout: 120_000,
  });
  const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(run.stdout)?.[1] ?? -1);
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
  assert.equal(count('fail'), 0, run.stdout);
  assert.ok(count('pass') >= 7, `passed: ${count('pass')}\n${run.stdout}`);
  assert.ok(count('skipped') >= 2, `the local-only checks are skipped: ${count('skipped')}`);
  assert.match(run.stdout, new RegExp(`queryIndex through the Firebase JS SDK \\(project ${t.projectId}\\)`));
});
