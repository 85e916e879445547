// API tokens: what a signed-in browser sends to create and revoke them. The name's characters, the
// scopes and the expiry are checked by src/auth/tokens.ts (parseTokenRequest), with messages per field.
import Type, { type Static } from 'typebox';
import { IdParams, Model, Nullable, Text } from './common.ts';

/**
 * sessions: start, list and stop sessions; jobs: submit, list and cancel batch jobs; files: the Files
 * API (list, download, upload, change; `read` does not stand in for it); read: only look (GET) at
 * sessions, jobs and the live event stream.
 */
export const API_SCOPES = ['sessions', 'jobs', 'files', 'read'] as const;
export const ApiScope = Type.Enum(API_SCOPES, { title: 'ApiScope' });
export type ApiScope = Static<typeof ApiScope>;

export const NewTokenBody = Type.Object({
  name: Type.Optional(
    Text(200, 'What the token is for: 1 to 64 letters, digits, spaces and . , : ( ) + - _'),
  ),
  scopes: Type.Optional(
    Type.Array(Text(40), { maxItems: 16, description: 'One or more of sessions, jobs, files, read.' }),
  ),
  expiresInDays: Type.Optional(
    Type.Union([Type.Number(), Type.Null()], {
      description: "Days until it expires (default 90, at most the site's auth.apiTokenMaxDays).",
    }),
  ),
});
export type NewTokenBody = Static<typeof NewTokenBody>;

export const TokenParams = IdParams;
export type TokenParams = IdParams;

// ---- replies ---------------------------------------------------------------------------------------

/** An API token as its owner sees it (never the token itself, which is shown once). */
export const TokenView = Model('TokenView', {
  id: Type.Number(),
  name: Type.String(),
  scopes: Type.Array(Type.String()),
  createdAt: Type.Number(),
  expiresAt: Nullable(Type.Number()),
  lastUsedAt: Nullable(Type.Number()),
  revokedAt: Nullable(Type.Number()),
});
export type TokenView = Static<typeof TokenView>;

export const TokensReply = Type.Object({ tokens: Type.Array(TokenView) });
export type TokensReply = Static<typeof TokensReply>;

/** The new token: `token` is shown this once (the gateway keeps only its hash). */
export const NewTokenReply = Type.Object({ token: Type.String({ description: 'atr_...' }), info: TokenView });
export type NewTokenReply = Static<typeof NewTokenReply>;
