// Headless Chromium (Debian's, started by run.mjs and driven over CDP by playwright-core):
// the emulator's search page, and the Firebase web SDK calling queryIndex across origins.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';
import { base64Of, isIdentical, local, target } from '../lib/target.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = process.env.RIS_INTEROP_ARTIFACTS ?? path.join(here, '..', 'artifacts');

describe('headless Chromium', { skip: !local && 'local only' }, () => {
  const t = local ? target() : null;
  const plainOrigin = process.env.RIS_PLAIN_ORIGIN;
  let browser;
  let context;
  let staticServer;
  let staticOrigin;
  let scratch;

  before(async () => {
    fs.mkdirSync(artifacts, { recursive: true });
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ris-interop-page-'));
    await esbuild.build({
      entryPoints: [path.join(here, '..', 'browser', 'sdk-entry.js')],
      bundle: true,
      format: 'iife',
      platform: 'browser',
      target: 'es2020',
      outfile: path.join(scratch, 'sdk-bundle.js'),
      logLevel: 'warning',
    });
    fs.copyFileSync(path.join(here, '..', 'browser', 'sdk.html'), path.join(scratch, 'sdk.html'));

    // The test page's own origin: 127.0.0.1 on another port than the callable's.
    staticServer = http.createServer((request, response) => {
      const name = path.basename(new URL(request.url, 'http://x').pathname);
      const file = path.join(scratch, name);
      if (!['sdk.html', 'sdk-bundle.js'].includes(name) || !fs.existsSync(file)) {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { 'content-type': name.endsWith('.html') ? 'text/html; charset=utf-8' : 'text/javascript' });
      response.end(fs.readFileSync(file));
    });
    await new Promise((resolve) => staticServer.listen(0, '127.0.0.1', resolve));
    staticOrigin = `http://127.0.0.1:${staticServer.address().port}`;

    browser = await chromium.connectOverCDP(process.env.RIS_CDP_URL);
    context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  });

  after(async () => {
    await context?.close().catch(() => {});
    await browser?.close().catch(() => {});
    await new Promise((resolve) => (staticServer ? staticServer.close(resolve) : resolve()));
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  test('search page: pick an image, see thumbnails with distances, its stored copy first', async () => {
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    const failedRequests = [];
    page.on('response', (response) => {
      if (response.status() >= 400 && !response.url().endsWith('/favicon.ico')) failedRequests.push(`${response.status()} ${response.url()}`);
    });
    try {
      await page.goto(`${plainOrigin}/`);
      await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Ready — '));
      const statusLine = await page.textContent('#status');
      assert.doesNotMatch(statusLine, /undefined|null|NaN/, `status line: ${statusLine}`);
      assert.equal(statusLine, `Ready — ${t.stored.length} images`, 'the human status counts the stored images');
      assert.equal(await page.textContent('#count-line'), `${t.stored.length} indexed · 0 skipped · 0 failed`);

      const picked = t.stored.find((s) => s.id.startsWith('rings-')) ?? t.stored[0];
      await page.setInputFiles('#file', picked.file);
      await page.waitForSelector('#results figure');
      await page.waitForFunction(() => document.querySelectorAll('#results figure').length === 12);
      // Every thumbnail has loaded (the viewport shows them all, so lazy loading starts them).
      await page.waitForFunction(() => [...document.querySelectorAll('#results figure img')]
        .every((img) => img.complete && img.naturalWidth > 0), null, { timeout: 15_000 });

      const shown = await page.$$eval('#results figure', (figures) => figures.map((f) => ({
        name: f.querySelector('img').alt,
        src: f.querySelector('img').getAttribute('src'),
        distance: f.querySelector('.distance').textContent,
      })));
      assert.equal(shown[0].name, picked.id, 'the picked image\'s stored copy is ranked first');
      assert.equal(shown[0].src, `/images/${encodeURIComponent(picked.id)}`);
      // DOT_PRODUCT_DISTANCE is shown as a similarity (larger is nearer), the other measures as a distance.
      const label = process.env.RIS_PLAIN_DISTANCE_MEASURE === 'DOT_PRODUCT_DISTANCE' || !process.env.RIS_PLAIN_DISTANCE_MEASURE ? 'similarity' : 'distance';
      const distances = shown.map((s) => Number(new RegExp(`^${label} (-?[\\d.]+)$`).exec(s.distance)?.[1]));
      assert.ok(distances.every(Number.isFinite), `distances shown: ${shown.map((s) => s.distance).join(', ')}`);
      assert.ok(isIdentical(distances[0], process.env.RIS_PLAIN_DISTANCE_MEASURE), `first distance ${distances[0]}`);
      for (let i = 1; i < distances.length; i++) {
        assert.ok(distances[i] <= distances[i - 1], 'dot products nearest (largest) first');
      }
      assert.equal(new Set(shown.map((s) => s.name)).size, shown.length, 'no image twice');
      assert.equal(await page.textContent('#error'), '', 'no error shown');
      assert.match(await page.textContent('#measure'), label === 'similarity' ? /1 is the same picture, larger is closer/ : /0 is the same picture, smaller is closer/);
      assert.equal(await page.$eval('#query img', (img) => img.complete && img.naturalWidth > 0), true, 'the query preview shows');
      await page.screenshot({ path: path.join(artifacts, 'search-page.png'), fullPage: true });
      assert.deepEqual(pageErrors, [], 'no script errors on the page');
      assert.deepEqual(failedRequests, [], 'no failed requests (a missing favicon aside)');
    } finally {
      await page.close();
    }
  });

  test('web SDK from another origin: CORS preflight, anonymous sign-in, results, error codes', async () => {
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    const preflights = [];
    await cdp.send('Network.enable');
    cdp.on('Network.requestWillBeSent', (event) => {
      if (event.request.method === 'OPTIONS' || event.type === 'Preflight') preflights.push({ url: event.request.url, type: event.type });
    });
    try {
      await page.goto(`${staticOrigin}/sdk.html`);
      const functionsUrl = new URL(t.functionsOrigin);
      assert.notEqual(functionsUrl.origin, new URL(page.url()).origin, 'the page and the callable are on different origins');
      const images = [t.stored[4], t.stored[20]];
      const summary = await page.evaluate((config) => window.risInterop.run(config), {
        apiKey: t.apiKey,
        projectId: t.projectId,
        region: t.region,
        authEmulatorHost: t.authEmulatorHost,
        functionsHost: functionsUrl.hostname,
        functionsPort: Number(functionsUrl.port),
        functionName: t.functionName,
        images: images.map((i) => base64Of(i.file)),
        neighbours: 4,
      });
      assert.equal(summary.isAnonymous, true);
      assert.equal(summary.result.status, 'ok');
      assert.equal(summary.result.message, 'Query successful');
      assert.equal(summary.result.data.nearestNeighbors.length, 2);
      images.forEach((image, i) => {
        const entry = summary.result.data.nearestNeighbors[i];
        assert.equal(entry.id, String(i));
        assert.equal(entry.neighbors.length, 4);
        assert.equal(entry.neighbors[0].datapoint.datapointId, image.id);
        assert.ok(isIdentical(entry.neighbors[0].distance, t.distanceMeasure), `distance ${entry.neighbors[0].distance}`);
      });
      assert.equal(summary.badQuery, 'functions/invalid-argument');
      assert.equal(summary.signedOut, 'functions/unauthenticated');
      const callablePreflights = preflights.filter((p) => p.url.startsWith(`${t.functionsOrigin}/`));
      assert.ok(callablePreflights.length > 0, `a preflight reached the callable (seen: ${JSON.stringify(preflights)})`);
      await page.screenshot({ path: path.join(artifacts, 'sdk-page.png'), fullPage: true });
    } finally {
      await cdp.detach().catch(() => {});
      await page.close();
    }
  });

  test('the callable answers a preflight as the cors middleware does', async () => {
    const response = await fetch(t.callableUrl, {
      method: 'OPTIONS',
      headers: {
        origin: staticOrigin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    assert.ok([200, 204].includes(response.status), `HTTP ${response.status}`);
    assert.equal(response.headers.get('access-control-allow-origin'), staticOrigin);
    assert.match(response.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.match(response.headers.get('access-control-allow-headers') ?? '', /authorization/i);
    assert.match(response.headers.get('vary') ?? '', /origin/i);
  });
});
