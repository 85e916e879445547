// Signing in and out: local and directory passwords, OpenID Connect's redirects and back-channel logout.
import Type, { type Static } from 'typebox';
import { Model, Nullable, OptionalBody, Text } from './common.ts';

/** Missing or empty fields get the route's own message ("enter a user name and a password"). */
export const LoginBody = OptionalBody(
  Type.Object({ username: Type.Optional(Text(1000)), password: Type.Optional(Text(10_000)) }),
);
export type LoginBody = Static<typeof LoginBody>;

/** `everywhere: true` ends every browser session of the user, not only this one. */
export const LogoutBody = OptionalBody(
  Type.Object({
    everywhere: Type.Optional(
      Type.Boolean({ description: 'End every browser session of the user, not only this one.' }),
    ),
  }),
);
export type LogoutBody = Static<typeof LogoutBody>;

/** Where to go after signing in (a local path; anything else becomes "/"). */
export const OidcStartQuery = Type.Object({
  next: Type.Optional(Text(2000, 'Where to go after signing in (a local path; anything else becomes "/").')),
});
export type OidcStartQuery = Static<typeof OidcStartQuery>;

/** The provider's redirect back (RFC 6749 4.1.2); the whole query also goes to the code exchange. */
export const OidcCallbackQuery = Type.Object({
  state: Type.Optional(Text(2000)),
  code: Type.Optional(Text(4000)),
  error: Type.Optional(Text(2000)),
  error_description: Type.Optional(Text(4000)),
});
export type OidcCallbackQuery = Static<typeof OidcCallbackQuery>;

/** OpenID Connect Back-Channel Logout 1.0: a form with one field (its checks answer per the spec). */
export const BackchannelLogoutBody = Type.Object({ logout_token: Type.Optional(Type.String()) });
export type BackchannelLogoutBody = Static<typeof BackchannelLogoutBody>;

// ---- replies ---------------------------------------------------------------------------------------

/** The signed-in user. */
export const Me = Model('Me', {
  id: Type.Number(),
  username: Type.String(),
  unixUser: Type.String({ description: 'The Unix account sessions and jobs run as.' }),
  displayName: Nullable(Type.String()),
  isAdmin: Type.Boolean(),
  groups: Type.Array(Type.String()),
  source: Type.String({ description: 'Where the account comes from: local, ldap, oidc.' }),
});
export type Me = Static<typeof Me>;

/** Signed in: the user, and the CSRF token the browser sends on writes (`X-CSRF-Token`). */
export const SignedInReply = Type.Object({ user: Me, csrfToken: Type.String() });
export type SignedInReply = Static<typeof SignedInReply>;

/** Who is calling; `csrfToken` is null for API tokens (they need none). */
export const MeReply = Type.Object({ user: Me, csrfToken: Nullable(Type.String()) });
export type MeReply = Static<typeof MeReply>;

/** How the sign-in page offers to sign in. */
export const AuthMethods = Model('AuthMethods', {
  local: Type.Boolean({ description: 'A user name and password form (local accounts or a directory).' }),
  passwordLabel: Type.String(),
  oidc: Nullable(Type.Object({ label: Type.String(), url: Type.String() })),
});
export type AuthMethods = Static<typeof AuthMethods>;

/** Signed out; `logoutUrl` is the identity provider's, to end the sign-in there too. */
export const LogoutReply = Type.Object({ ok: Type.Literal(true), logoutUrl: Nullable(Type.String()) });
export type LogoutReply = Static<typeof LogoutReply>;

/** Why an OpenID Connect sign-in failed: the login page shows `/login?error=<code>`. */
export const OIDC_ERROR_CODES = [
  'failed',
  'expired',
  'denied',
  'not_allowed',
  'conflict',
  'disabled',
  'unavailable',
] as const;
export const OidcErrorCode = Type.Enum(OIDC_ERROR_CODES, { title: 'OidcErrorCode' });
export type OidcErrorCode = Static<typeof OidcErrorCode>;
