// Signing in and out: local and directory passwords, OpenID Connect's redirects and back-channel logout.
import Type, { type Static } from 'typebox';
import { OptionalBody, Text } from './common.ts';

/** Missing or empty fields get the route's own message ("enter a user name and a password"). */
export const LoginBody = OptionalBody(
  Type.Object({ username: Type.Optional(Text(1000)), password: Type.Optional(Text(10_000)) }),
);
export type LoginBody = Static<typeof LoginBody>;

/** `everywhere: true` ends every browser session of the user, not only this one. */
export const LogoutBody = OptionalBody(Type.Object({ everywhere: Type.Optional(Type.Boolean()) }));
export type LogoutBody = Static<typeof LogoutBody>;

/** Where to go after signing in (a local path; anything else becomes "/"). */
export const OidcStartQuery = Type.Object({ next: Type.Optional(Text(2000)) });
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
