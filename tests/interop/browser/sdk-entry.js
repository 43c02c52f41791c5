// Bundled by esbuild for the browser test: the Firebase web SDK calling queryIndex from a page on
// another origin than the callable's, so that the browser sends a CORS preflight first.
import { deleteApp, initializeApp } from 'firebase/app';
import { connectAuthEmulator, getAuth, signInAnonymously, signOut } from 'firebase/auth';
import { connectFunctionsEmulator, getFunctions, httpsCallable } from 'firebase/functions';

async function codeOf(promise) {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return error.code ?? String(error);
  }
}

async function run(config) {
  const app = initializeApp({ apiKey: config.apiKey, projectId: config.projectId }, `page-${Date.now()}`);
  try {
    const auth = getAuth(app);
    connectAuthEmulator(auth, `http://${config.authEmulatorHost}`, { disableWarnings: true });
    const functions = getFunctions(app, config.region);
    connectFunctionsEmulator(functions, config.functionsHost, config.functionsPort);
    const queryIndex = httpsCallable(functions, config.functionName);
    const credential = await signInAnonymously(auth);
    const { data: result } = await queryIndex({ query: config.images, neighbours: config.neighbours });
    const badQuery = await codeOf(queryIndex({ query: 'not-an-array' }));
    await signOut(auth);
    const signedOut = await codeOf(queryIndex({ query: config.images }));
    const summary = { uid: credential.user.uid, isAnonymous: credential.user.isAnonymous, result, badQuery, signedOut };
    document.getElementById('out').textContent = JSON.stringify(summary, null, 2);
    return summary;
  } finally {
    await deleteApp(app);
  }
}

window.risInterop = { run };
