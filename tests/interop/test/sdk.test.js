// The Firebase JS SDK (npm `firebase`) against queryIndex: locally through the Auth emulator and the
// product's emulator host (run.mjs starts them), or against a deployed installation.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { deleteApp, initializeApp } from 'firebase/app';
import {
  connectAuthEmulator, getAuth, signInAnonymously, signInWithEmailAndPassword, signOut,
} from 'firebase/auth';
import { connectFunctionsEmulator, getFunctions, httpsCallable } from 'firebase/functions';
import { base64Of, isIdentical, local, nearerOrEqual, target } from '../lib/target.js';
import { claimsFor, signRs256, signWithRandomKey, unsigned } from '../lib/tokens.js';

const t = target();
let app;
let auth;
let queryIndex;

async function signIn() {
  if (!local && t.email) return signInWithEmailAndPassword(auth, t.email, t.password);
  return signInAnonymously(auth);
}

/** Asserts one nearestNeighbors entry: the original's shape, nearest first, `expectedId` first and identical. */
function assertEntry(entry, index, expectedId, maxNeighbours) {
  assert.deepEqual(Object.keys(entry).sort(), ['id', 'neighbors']);
  assert.equal(entry.id, String(index));
  assert.ok(Array.isArray(entry.neighbors) && entry.neighbors.length > 0, 'some neighbours');
  assert.ok(entry.neighbors.length <= maxNeighbours, `at most ${maxNeighbours} neighbours`);
  for (const neighbour of entry.neighbors) {
    assert.equal(typeof neighbour.datapoint?.datapointId, 'string');
    assert.equal(typeof neighbour.datapoint.crowdingTag, 'object', 'datapoint.crowdingTag is an object');
    assert.ok(neighbour.distance === undefined || typeof neighbour.distance === 'number', 'distance is a number');
  }
  const [first] = entry.neighbors;
  assert.equal(first.datapoint.datapointId, expectedId, `the stored copy of query ${index} comes first`);
  assert.ok(isIdentical(first.distance, t.distanceMeasure),
    `query ${index}: distance ${first.distance} means "identical" under ${t.distanceMeasure}`);
  for (let i = 1; i < entry.neighbors.length; i++) {
    assert.ok(nearerOrEqual(entry.neighbors[i - 1].distance, entry.neighbors[i].distance, t.distanceMeasure),
      `neighbours nearest first (${entry.neighbors[i - 1].distance} then ${entry.neighbors[i].distance})`);
  }
  const ids = entry.neighbors.map((n) => n.datapoint.datapointId);
  assert.equal(new Set(ids).size, ids.length, 'no datapoint twice');
}

function assertEnvelope(result, queries) {
  assert.deepEqual(Object.keys(result).sort(), ['data', 'message', 'status']);
  assert.equal(result.status, 'ok');
  assert.equal(result.message, 'Query successful');
  assert.ok(Array.isArray(result.data?.nearestNeighbors), 'data.nearestNeighbors is an array');
  assert.equal(result.data.nearestNeighbors.length, queries, 'one entry per query image');
}

async function rejectsWith(promise, code) {
  await assert.rejects(promise, (error) => {
    assert.equal(error.code, code, `code ${error.code} (${error.message})`);
    return true;
  });
}

async function postWithToken(token) {
  const response = await fetch(t.callableUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ data: { query: [base64Of(t.stored[0].file)], neighbours: 1 } }),
  });
  return { status: response.status, body: await response.json().catch(() => null) };
}

function assertUnauthenticated(answer, what) {
  assert.equal(answer.status, 401, `${what}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
  assert.equal(answer.body?.error?.status, 'UNAUTHENTICATED', what);
}

describe(`queryIndex through the Firebase JS SDK (${local ? 'local emulators' : `project ${t.projectId}`})`, () => {
  before(async () => {
    assert.ok(t.stored.length >= 3 || !local, 'the local image folder holds images');
    app = initializeApp({ apiKey: t.apiKey, projectId: t.projectId, authDomain: `${t.projectId}.firebaseapp.com` }, `interop-${Date.now()}`);
    auth = getAuth(app);
    const functions = getFunctions(app, t.region);
    if (t.authEmulatorHost) {
      connectAuthEmulator(auth, `http://${t.authEmulatorHost}`, { disableWarnings: true });
      const { hostname, port } = new URL(t.functionsOrigin);
      connectFunctionsEmulator(functions, hostname, Number(port));
    }
    queryIndex = httpsCallable(functions, t.functionName);
    await signIn();
  });

  after(async () => {
    if (app) await deleteApp(app);
  });

  test('signs in (anonymously unless a test user is given)', async () => {
    assert.ok(auth.currentUser, 'a current user');
    if (local || !t.email) assert.equal(auth.currentUser.isAnonymous, true);
    const token = await auth.currentUser.getIdTokenResult();
    assert.equal(token.claims.aud, t.projectId);
    const { alg } = JSON.parse(Buffer.from(token.token.split('.')[0], 'base64url'));
    assert.equal(alg, t.authEmulatorHost ? 'none' : 'RS256', 'the Auth emulator signs nothing; Google signs with RS256');
  });

  test('one image: the original response shape; its stored copy first at the "identical" distance', async () => {
    const image = t.stored[Math.floor(t.stored.length / 2)];
    const { data: result } = await queryIndex({ query: [base64Of(image.file)], neighbours: 5 });
    assertEnvelope(result, 1);
    assertEntry(result.data.nearestNeighbors[0], 0, image.id, 5);
    if (local) assert.equal(result.data.nearestNeighbors[0].neighbors.length, 5, 'exactly the neighbours asked for');
  });

  test('several images: one entry per image, in order, each finding its own stored copy first', async () => {
    const images = local ? [t.stored[0], t.stored[7], t.stored[t.stored.length - 1]] : t.stored;
    const { data: result } = await queryIndex({ query: images.map((i) => base64Of(i.file)), neighbours: '3' });
    assertEnvelope(result, images.length);
    images.forEach((image, i) => assertEntry(result.data.nearestNeighbors[i], i, image.id, 3));
  });

  test('a data URL (as FileReader gives it) is accepted too', { skip: !local && 'local only' }, async () => {
    const image = t.stored[1];
    const { data: result } = await queryIndex({ query: [`data:image/jpeg;base64,${base64Of(image.file)}`], neighbours: 2 });
    assertEntry(result.data.nearestNeighbors[0], 0, image.id, 2);
  });

  test('neighbours defaults to 10', { skip: !local && 'local only' }, async () => {
    const { data: result } = await queryIndex({ query: [base64Of(t.stored[2].file)] });
    assert.equal(result.data.nearestNeighbors[0].neighbors.length, 10);
  });

  test('more like this: paths answers from the stored image, itself left out; an unknown path is functions/not-found', { skip: !local && 'local only' }, async () => {
    const image = t.stored[3];
    const { data: byImage } = await queryIndex({ query: [base64Of(image.file)], neighbours: 4 });
    const { data: byPath } = await queryIndex({ paths: [image.id], neighbours: 3 });
    assertEnvelope(byPath, 1);
    assert.equal(byPath.data.nearestNeighbors[0].id, image.id, 'the entry is named by its path');
    assert.deepEqual(byPath.data.nearestNeighbors[0].neighbors.map((n) => n.datapoint.datapointId),
      byImage.data.nearestNeighbors[0].neighbors.slice(1).map((n) => n.datapoint.datapointId), 'its neighbours, less itself');
    await assert.rejects(queryIndex({ paths: ['no/such image.jpg'] }), (error) => {
      assert.equal(error.code, 'functions/not-found');
      assert.match(error.message, /no\/such image\.jpg/);
      assert.deepEqual(error.details?.paths, ['no/such image.jpg']);
      return true;
    });
  });

  test('bad queries reject with functions/invalid-argument', async () => {
    const bad = [
      undefined,
      {},
      { query: 'not-an-array' },
      { query: [] },
      { query: [42] },
      { query: ['%%% not base64 %%%'] },
      { query: [Buffer.from('plain text, not an image').toString('base64')] },
      { query: [base64Of(t.stored[0].file), 'AAAA'] },
    ];
    for (const data of bad) {
      await rejectsWith(queryIndex(data), 'functions/invalid-argument');
    }
  });

  test('an invalid-argument error carries a message and details', async () => {
    await assert.rejects(queryIndex({ query: [base64Of(t.stored[0].file), 'AAAA'] }), (error) => {
      assert.equal(error.code, 'functions/invalid-argument');
      assert.match(error.message, /query\[1\]/);
      assert.equal(error.details?.index, 1);
      return true;
    });
  });

  test('forged ID tokens are rejected with UNAUTHENTICATED', async () => {
    const claims = claimsFor(t.projectId);
    // Google's keys' ids are 40 hex digits; any kid will do for a key nobody trusts.
    assertUnauthenticated(await postWithToken(signWithRandomKey(claims, 'f'.repeat(40))), 'RS256, random key, unknown kid');
    if (local) {
      // The stand-in for Google's certificates serves this kid: same kid, another key.
      assertUnauthenticated(await postWithToken(signWithRandomKey(claims, process.env.RIS_SIGNING_KID)), 'RS256, random key, trusted kid');
    }
    assertUnauthenticated(await postWithToken(unsigned({ ...claims, aud: 'another-project', iss: 'https://securetoken.google.com/another-project' })),
      'alg none for another project');
    if (!t.authEmulatorHost) assertUnauthenticated(await postWithToken(unsigned(claims)), 'alg none against Google');
    assertUnauthenticated(await postWithToken('not.a.jwt'), 'garbage');
  });

  test('signed out: rejects with functions/unauthenticated', async () => {
    await signOut(auth);
    try {
      assert.equal(auth.currentUser, null);
      await rejectsWith(queryIndex({ query: [base64Of(t.stored[0].file)] }), 'functions/unauthenticated');
    } finally {
      await signIn();
    }
  });
});

// The host a user runs (no Auth emulator): callers without a token are trusted as the local user,
// a token that IS sent must be signed by Google (here: by the loopback stand-in for Google's keys).
describe('local host without the Auth emulator: only Google-signed tokens', { skip: !local && 'local only' }, () => {
  const plain = () => `${process.env.RIS_PLAIN_ORIGIN}/${t.projectId}/${t.region}/${t.functionName}`;
  const post = async (headers) => {
    const response = await fetch(plain(), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ data: { query: [base64Of(t.stored[3].file)], neighbours: 2 } }),
    });
    return { status: response.status, body: await response.json().catch(() => null) };
  };

  test('no token: trusted as the local user', async () => {
    const answer = await post({});
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.result.data.nearestNeighbors[0].neighbors[0].datapoint.datapointId, t.stored[3].id);
    assert.ok(isIdentical(answer.body.result.data.nearestNeighbors[0].neighbors[0].distance, process.env.RIS_PLAIN_DISTANCE_MEASURE));
  });

  test('a token signed with the trusted key is accepted (control for the rejections below)', async () => {
    const token = signRs256(claimsFor(t.projectId), fs.readFileSync(process.env.RIS_SIGNING_KEY_FILE), process.env.RIS_SIGNING_KID);
    const answer = await post({ authorization: `Bearer ${token}` });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
  });

  test('alg none (an Auth emulator token) is rejected', async () => {
    assertUnauthenticated(await post({ authorization: `Bearer ${unsigned(claimsFor(t.projectId))}` }), 'alg none');
  });

  test('RS256 with a random key is rejected, with a trusted or an unknown kid', async () => {
    const claims = claimsFor(t.projectId);
    assertUnauthenticated(await post({ authorization: `Bearer ${signWithRandomKey(claims, process.env.RIS_SIGNING_KID)}` }), 'trusted kid');
    assertUnauthenticated(await post({ authorization: `Bearer ${signWithRandomKey(claims, 'unknown-kid')}` }), 'unknown kid');
  });

  test('a trusted signature on an expired token is rejected', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = signRs256({ ...claimsFor(t.projectId), exp: now - 10 }, fs.readFileSync(process.env.RIS_SIGNING_KEY_FILE), process.env.RIS_SIGNING_KID);
    assertUnauthenticated(await post({ authorization: `Bearer ${token}` }), 'expired');
  });
});
