import crypto from 'node:crypto';

/** A random token for cookies, callbacks and API tokens (256 bits, URL-safe). */
export function newToken(bytes = 32): string {
  return crypto.randomBytes(bytes).toString('base64url');
}

/** Tokens are stored only as their hash, so a copy of the database grants nothing. */
export function hashToken(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex');
}

/** Constant-time comparison of two strings (e.g. CSRF tokens). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && crypto.timingSafeEqual(ab, bb);
}

const ID_ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789';

/** Short, readable, URL-safe id for sessions (e.g. "k3m9x2qa"). */
export function newShortId(length = 8): string {
  const bytes = crypto.randomBytes(length);
  let out = '';
  for (const b of bytes) out += ID_ALPHABET[b % ID_ALPHABET.length];
  return out;
}
