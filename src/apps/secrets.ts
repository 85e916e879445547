// Per-app secrets of a session, derived from the session's app token on both sides (the gateway has it
// in its database, the agent in its environment), so no app holds another's secret: an extra app gets
// its own {token}, and every relay its own preamble secret, none of them the main app's token.
import crypto from 'node:crypto';

const derive = (label: string, appId: string, appToken: string) =>
  crypto.createHash('sha256').update(`atrium:${label}:${appId}:${appToken}`).digest('base64url');

/** What `{token}` is for an app: the session's app token for its main app, a derived one for extras. */
export function appTokenFor(appToken: string, appId: string, main: boolean): string {
  return main ? appToken : derive('app', appId, appToken);
}

/** The secret the agent's relay for this app wants first on every connection. */
export function relaySecretFor(appToken: string, appId: string): string {
  return derive('relay', appId, appToken);
}

/** The secret of the session's dial-out tunnel (src/apps/tunnel.ts): the agent and the gateway prove it. */
export function tunnelSecretFor(appToken: string, sessionId: string): string {
  return derive('tunnel', sessionId, appToken);
}
