// Callbacks from the agent inside each session (src/agent/main.ts sends these). Each is bound to one
// session by a secret in the Authorization header. Fields other than these are ignored, never applied.
import Type, { type Static } from 'typebox';
import { Nullable, Text } from './common.ts';

const SessionId = Text(64);
const Port = Type.Optional(Type.Number());
const Socket = Type.Optional(Text(4096));

/** The agent has started in its job, before its apps (the gateway confirms the job's node meanwhile). */
export const AgentStartingBody = Type.Object({ sessionId: SessionId });
export type AgentStartingBody = Static<typeof AgentStartingBody>;

/** Where the session's apps listen: the main app, and each extra app by id. */
export const AgentReadyBody = Type.Object({
  sessionId: SessionId,
  host: Type.Optional(Text(255)),
  port: Port,
  socket: Socket,
  apps: Type.Optional(
    Type.Array(Type.Object({ id: Text(64), port: Port, socket: Socket }), { maxItems: 16 }),
  ),
});
export type AgentReadyBody = Static<typeof AgentReadyBody>;

/** Still alive; extra apps that have exited since the last beat. */
export const AgentHeartbeatBody = Type.Object({
  sessionId: SessionId,
  stoppedApps: Type.Optional(Type.Array(Text(64), { maxItems: 16 })),
});
export type AgentHeartbeatBody = Static<typeof AgentHeartbeatBody>;

/** The main app exited (with its exit code when it had one). */
export const AgentExitBody = Type.Object({
  sessionId: SessionId,
  code: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
});
export type AgentExitBody = Static<typeof AgentExitBody>;

/** The app could not be started. */
export const AgentFailedBody = Type.Object({ sessionId: SessionId, reason: Type.Optional(Text(4000)) });
export type AgentFailedBody = Static<typeof AgentFailedBody>;

/** The user's current identity-provider access token, for the session (auth.oidc.passTokensToSessions). */
export const AgentTokenBody = Type.Object({ sessionId: SessionId });
export type AgentTokenBody = Static<typeof AgentTokenBody>;

// ---- replies ---------------------------------------------------------------------------------------

/** The ready call's answer: the token heartbeats carry, and how often to send them. */
export const AgentReadyReply = Type.Object({
  heartbeatToken: Type.String(),
  heartbeatSeconds: Type.Number(),
});
export type AgentReadyReply = Static<typeof AgentReadyReply>;

/** The user's current access token; ask again after `refreshInSeconds`. */
export const AgentTokenReply = Type.Object({
  accessToken: Type.String(),
  expiresAt: Nullable(Type.Number()),
  refreshInSeconds: Type.Number(),
});
export type AgentTokenReply = Static<typeof AgentTokenReply>;
