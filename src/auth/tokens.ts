// API tokens that users create to drive the API from scripts: what a scope allows, and what a request
// to create one must look like. Pure, so the rules are unit-tested apart from the routes.
import { API_SCOPES, type ApiScope } from '../api/tokens.ts';
import { newToken } from './secrets.ts';

// The scopes are part of the API contract (what each allows is described there).
export { API_SCOPES, type ApiScope };

export const TOKEN_PREFIX = 'atr_';
/** At most this many tokens that are neither revoked nor expired per user. */
export const MAX_ACTIVE_TOKENS = 50;

const READ_METHODS = new Set(['GET', 'HEAD']);
const NAME_RE = /^[\p{L}\p{N} _.,:()+-]{1,64}$/u;

/**
 * Whether a request may go on. Browser sessions (tokenScopes null) may do what their user may. A token
 * needs the route's scope; the `read` scope stands in for any scope on GET and HEAD.
 */
export function scopeAllows(
  tokenScopes: readonly string[] | null,
  needed: ApiScope | undefined,
  method: string,
) {
  if (tokenScopes === null || needed === undefined) return true;
  if (tokenScopes.includes(needed)) return true;
  return READ_METHODS.has(method.toUpperCase()) && tokenScopes.includes('read');
}

export interface TokenRequest {
  name: string;
  scopes: ApiScope[];
  expiresAt: number;
}

export type TokenRequestResult =
  | { ok: true; value: TokenRequest }
  | { ok: false; field: string; error: string };

/** Checks a posted {name, scopes, expiresInDays}; days default to 90 and are capped by the site's maximum. */
export function parseTokenRequest(body: unknown, maxDays: number, now = Date.now()): TokenRequestResult {
  const b = (body ?? {}) as Record<string, unknown>;
  const name = typeof b.name === 'string' ? b.name.trim() : '';
  if (!NAME_RE.test(name)) {
    return {
      ok: false,
      field: 'name',
      error: 'Name: 1 to 64 letters, digits, spaces and . , : ( ) + - _',
    };
  }
  if (!Array.isArray(b.scopes) || b.scopes.length === 0) {
    return { ok: false, field: 'scopes', error: `Scopes: choose at least one of ${API_SCOPES.join(', ')}` };
  }
  const scopes: ApiScope[] = [];
  for (const s of b.scopes) {
    if (typeof s !== 'string' || !(API_SCOPES as readonly string[]).includes(s)) {
      return {
        ok: false,
        field: 'scopes',
        error: `Scopes: unknown scope; choose from ${API_SCOPES.join(', ')}`,
      };
    }
    if (!scopes.includes(s as ApiScope)) scopes.push(s as ApiScope);
  }
  const days =
    b.expiresInDays === undefined || b.expiresInDays === null ? Math.min(90, maxDays) : b.expiresInDays;
  if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > maxDays) {
    return {
      ok: false,
      field: 'expiresInDays',
      error: `Expires in: a whole number of days from 1 to ${maxDays}`,
    };
  }
  return { ok: true, value: { name, scopes, expiresAt: now + days * 86_400_000 } };
}

/** A new token: a recognisable prefix (secret scanners find leaked ones) and 256 random bits. */
export function newApiToken(): string {
  return TOKEN_PREFIX + newToken(32);
}
