// Forged Firebase ID tokens: the claims of a genuine token, with a signature nobody trusted, or none.
import crypto from 'node:crypto';

const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

export function claimsFor(projectId, uid = 'interop-forged-user') {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: `https://securetoken.google.com/${projectId}`,
    aud: projectId,
    auth_time: now - 60,
    user_id: uid,
    sub: uid,
    iat: now - 60,
    exp: now + 3600,
    firebase: { identities: {}, sign_in_provider: 'anonymous' },
  };
}

/** RS256 with the given private key (PEM or KeyObject) and kid. */
export function signRs256(claims, privateKey, kid) {
  const head = b64url({ alg: 'RS256', kid, typ: 'JWT' });
  const body = b64url(claims);
  const signature = crypto.sign('RSA-SHA256', Buffer.from(`${head}.${body}`), privateKey).toString('base64url');
  return `${head}.${body}.${signature}`;
}

/** RS256 with a key made up on the spot. */
export function signWithRandomKey(claims, kid) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return signRs256(claims, privateKey, kid);
}

/** The Auth emulator's unsigned form: alg none, empty signature. */
export function unsigned(claims) {
  return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`;
}
