// The API contract: the typebox schema of what each route takes (body, query, path parameters) and
// what it answers, one file per area, and the error reply every refusal uses. The server validates
// every request with these before a handler runs (src/server/validation.ts), so a handler only ever
// sees the types named here; the reply types are the services' own, the web UI's and scripts'; the
// OpenAPI document (/api/openapi.json, docs/api.md) is built from both.
export * from './admin.ts';
export * from './agent.ts';
export * from './auth.ts';
export * from './clusters.ts';
export * from './common.ts';
export * from './desktop-links.ts';
export * from './extension.ts';
export * from './files.ts';
export * from './gateway.ts';
export * from './history.ts';
export * from './jobs.ts';
export * from './notifications.ts';
export * from './presets.ts';
export * from './sessions.ts';
export * from './tokens.ts';
export * from './usage.ts';
