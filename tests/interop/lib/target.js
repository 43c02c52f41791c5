// What the tests run against: the local hosts started by run.mjs (RIS_LOCAL=1), or a deployed
// installation described by environment variables (README.md, "Checking an installation").
import fs from 'node:fs';
import path from 'node:path';

const env = process.env;

function required(name) {
  const value = env[name];
  if (!value) throw new Error(`${name} is not set (see README.md, "Checking an installation")`);
  return value;
}

export const local = env.RIS_LOCAL === '1';

export function target() {
  const projectId = required('RIS_PROJECT_ID');
  const region = env.RIS_REGION || 'us-central1';
  const instanceId = env.RIS_EXT_INSTANCE_ID || 'storage-reverse-image-search';
  const distanceMeasure = env.RIS_DISTANCE_MEASURE || 'DOT_PRODUCT_DISTANCE';
  const common = {
    local,
    projectId,
    region,
    instanceId,
    functionName: `ext-${instanceId}-queryIndex`,
    apiKey: required('RIS_API_KEY'),
    distanceMeasure,
  };
  if (local) {
    const images = required('RIS_IMAGES_DIR');
    const names = fs.readdirSync(images).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort();
    return {
      ...common,
      authEmulatorHost: required('RIS_AUTH_EMULATOR_HOST'),
      functionsOrigin: required('RIS_FUNCTIONS_ORIGIN'),
      callableUrl: `${required('RIS_FUNCTIONS_ORIGIN')}/${projectId}/${region}/${common.functionName}`,
      // Stored images (datapoint id = object name) and the files holding them.
      stored: names.map((name) => ({ id: name, file: path.join(images, name) })),
    };
  }
  // A deployed installation: RIS_QUERY_IMAGES is a comma-separated list of local files, each an
  // unmodified copy of an object in the bucket; RIS_QUERY_OBJECTS the object names, in the same order.
  const files = required('RIS_QUERY_IMAGES').split(',').map((s) => s.trim()).filter(Boolean);
  const ids = required('RIS_QUERY_OBJECTS').split(',').map((s) => s.trim()).filter(Boolean);
  if (files.length !== ids.length) throw new Error('RIS_QUERY_IMAGES and RIS_QUERY_OBJECTS must list as many entries');
  // RIS_FUNCTIONS_ORIGIN with RIS_AUTH_EMULATOR_HOST: the same checks against emulators instead of
  // Google (test/deployed-mode.test.js runs this path in CI against the local hosts).
  const functionsOrigin = env.RIS_FUNCTIONS_ORIGIN || '';
  const authEmulatorHost = env.RIS_AUTH_EMULATOR_HOST || '';
  if (Boolean(functionsOrigin) !== Boolean(authEmulatorHost)) {
    throw new Error('set both RIS_FUNCTIONS_ORIGIN and RIS_AUTH_EMULATOR_HOST, or neither');
  }
  return {
    ...common,
    functionsOrigin,
    authEmulatorHost,
    callableUrl: functionsOrigin
      ? `${functionsOrigin}/${projectId}/${region}/${common.functionName}`
      : `https://${region}-${projectId}.cloudfunctions.net/${common.functionName}`,
    stored: files.map((file, i) => ({ id: ids[i], file: path.resolve(file) })),
    email: env.RIS_TEST_EMAIL || '',
    password: env.RIS_TEST_PASSWORD || '',
  };
}

/** True when `distance` says "the same image" under `measure` (unit vectors). */
export function isIdentical(distance, measure) {
  const d = Number(distance ?? 0); // proto3 JSON omits a distance of 0
  return measure === 'DOT_PRODUCT_DISTANCE' ? Math.abs(d - 1) < 1e-3 : Math.abs(d) < 1e-3;
}

/** Whether `a` is at least as near as `b` under `measure`. */
export function nearerOrEqual(a, b, measure) {
  const [x, y] = [Number(a ?? 0), Number(b ?? 0)];
  return measure === 'DOT_PRODUCT_DISTANCE' ? x >= y - 1e-6 : x <= y + 1e-6;
}

export function base64Of(file) {
  return fs.readFileSync(file).toString('base64');
}
