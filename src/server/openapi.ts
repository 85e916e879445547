// The OpenAPI 3.1 document of the API, built from the same typebox schemas the server validates with
// (src/api/): every /api route as it was registered, so the reference cannot drift from the code.
// Served at /api/openapi.json; `npm run docs:api` renders it into docs/api.md.
import fs from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { TSchema } from 'typebox';
import { ErrorReply } from '../api/common.ts';

declare module 'fastify' {
  interface FastifySchema {
    /** One line: what the route does (the reference's heading for it). */
    summary?: string;
    /** More about the route, when one line is not enough. */
    description?: string;
    /**
     * What the route answers, by status. Documentation and types only: the gateway does not filter
     * replies through these (fastify's own `response` would drop fields it does not know).
     */
    reply?: Record<number, TSchema>;
    /** Media types of a body that is not JSON (a form, a file's bytes). */
    consumes?: readonly string[];
  }
}

export interface RegisteredRoute {
  method: string;
  url: string;
  schema: Record<string, unknown>;
  /** The route's own policy (src/server/route-policy.ts), for the reference's notes. */
  config: Record<string, unknown>;
  /** For tests that check the route declares what its handler reads. */
  handler: (...args: never[]) => unknown;
}

/** Collects every route as it is registered; call before any route is added. */
export function collectRoutes(app: FastifyInstance): RegisteredRoute[] {
  const routes: RegisteredRoute[] = [];
  app.addHook('onRoute', (r) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    for (const m of methods) {
      if (m === 'HEAD' || m === 'OPTIONS') continue;
      routes.push({
        method: m,
        url: r.url,
        schema: (r.schema ?? {}) as Record<string, unknown>,
        config: (r.config ?? {}) as Record<string, unknown>,
        handler: r.handler as RegisteredRoute['handler'],
      });
    }
  });
  return routes;
}

/** `/api/sessions/:id` → `/api/sessions/{id}` */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

type Json = Record<string, unknown>;

/** Strips typebox's symbols and keeps plain JSON Schema (2020-12, what OpenAPI 3.1 uses). */
function plain(schema: unknown): Json {
  return JSON.parse(JSON.stringify(schema)) as Json;
}

/** The object schema's properties as OpenAPI parameters (path or query). */
function parameters(schema: unknown, where: 'path' | 'query', url: string): Json[] {
  if (!schema) {
    if (where !== 'path') return [];
    // A path parameter without a schema is still a parameter: a string.
    return [...url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
  }
  const s = plain(schema);
  const props = (s.properties ?? {}) as Record<string, Json>;
  const required = new Set((s.required ?? []) as string[]);
  return Object.entries(props).map(([name, p]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    ...(p.description ? { description: p.description } : {}),
    schema: p,
  }));
}

/** The reference's sections: the path's area, with the sign-in routes together. */
const TAG_OF: Record<string, string> = {
  login: 'auth',
  logout: 'auth',
  me: 'auth',
  queue: 'jobs',
  announcements: 'admin',
  health: 'gateway',
  'openapi.json': 'gateway',
};

export const TAGS: Record<string, string> = {
  auth: 'Signing in and out, who is calling, and OpenID Connect.',
  sessions: 'Interactive sessions: start, look at and stop them.',
  clusters: 'What each cluster offers, what is free now, and its nodes and partitions.',
  jobs: 'Batch jobs and the queue: submit, follow, cancel, read output.',
  files: "The Files page: the user's folders, as the user.",
  notifications: 'What happened to your sessions and jobs, and how you want to hear of it.',
  tokens: 'API tokens for scripts (created and listed from a signed-in browser).',
  events: 'Live updates as server-sent events.',
  admin: 'Administration (administrators with a browser session), and the announcements every user sees.',
  agent:
    "Callbacks of the agent inside each session (bound to the session by its secret, not a user's sign-in).",
  gateway: "The gateway's health and this description of its API.",
};

function tagOf(url: string): string {
  const seg = (url.split('/')[2] ?? 'api').replace(/:.*/, '') || 'api';
  return TAG_OF[seg] ?? seg;
}

function summaryOf(route: RegisteredRoute): string | undefined {
  const s = route.schema.summary;
  return typeof s === 'string' ? s : undefined;
}

const STATUS_TEXT: Record<string, string> = {
  '200': 'OK',
  '201': 'Created',
  '204': 'No content',
  '302': 'Redirect',
  '410': 'Gone',
};

/**
 * Named types (schemas with a `title`) become components, referred to where they are used; the
 * first one of a name wins, and two different schemas of one name are an error in the contract.
 */
class Components {
  readonly schemas: Record<string, Json> = {};

  ref(schema: unknown): Json {
    return this.walk(plain(schema));
  }

  private walk(node: unknown): Json {
    if (Array.isArray(node)) return node.map((n) => this.walk(n)) as unknown as Json;
    if (node === null || typeof node !== 'object') return node as Json;
    const out: Json = {};
    for (const [k, v] of Object.entries(node as Json)) {
      // Values of these keywords are data (a const, an enum's values, a default), not schemas.
      out[k] = k === 'const' || k === 'enum' || k === 'default' || k === 'examples' ? v : this.walk(v);
    }
    const title = out.title;
    if (typeof title !== 'string') return out;
    const seen = this.schemas[title];
    if (seen && JSON.stringify(seen) !== JSON.stringify(out))
      throw new Error(`API contract: two different schemas are named ${title}`);
    this.schemas[title] = out;
    return { $ref: `#/components/schemas/${title}` };
  }
}

/** A body schema that may be left out (`OptionalBody`: the object or null) is an optional body. */
function bodyOf(schema: unknown): { schema: unknown; required: boolean } {
  const s = schema as { anyOf?: Json[] };
  if (Array.isArray(s.anyOf) && s.anyOf.length === 2) {
    const rest = s.anyOf.filter((b) => b.type !== 'null');
    if (rest.length === 1) return { schema: rest[0], required: false };
  }
  return { schema, required: true };
}

function response(code: string, schema: unknown, components: Components): Json {
  const s = plain(schema);
  const description = typeof s.description === 'string' ? s.description : (STATUS_TEXT[code] ?? code);
  const keys = Object.keys(s).filter((k) => k !== 'description');
  if (keys.length === 0) return { description };
  if (s.type === 'string' && typeof s.contentMediaType === 'string')
    return { description, content: { [s.contentMediaType]: { schema: { type: 'string' } } } };
  return { description, content: { 'application/json': { schema: components.ref(schema) } } };
}

/** The version of Atrium (package.json), for the document's info. */
export function atriumVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0';
  } catch {
    return '0';
  }
}

export function openApiDocument(
  routes: RegisteredRoute[],
  info: { version: string; serverUrl?: string },
): Json {
  const paths: Record<string, Record<string, Json>> = {};
  const components = new Components();
  const tags = new Set<string>();
  for (const r of routes) {
    if (!r.url.startsWith('/api/')) continue;
    const p = openApiPath(r.url);
    paths[p] ??= {};
    const tag = tagOf(r.url);
    tags.add(tag);
    const op: Json = {
      operationId: `${r.method.toLowerCase()}${p.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      tags: [tag],
    };
    const summary = summaryOf(r);
    if (summary) op.summary = summary;
    if (typeof r.schema.description === 'string') op.description = r.schema.description;
    const params = [
      ...parameters(r.schema.params, 'path', r.url),
      ...parameters(r.schema.querystring, 'query', r.url),
    ];
    if (params.length > 0) op.parameters = params.map((x) => ({ ...x, schema: components.ref(x.schema) }));
    const consumes = Array.isArray(r.schema.consumes)
      ? (r.schema.consumes as string[])
      : ['application/json'];
    if (r.schema.body) {
      const body = bodyOf(plain(r.schema.body));
      const schema = components.ref(body.schema);
      op.requestBody = {
        required: body.required,
        content: Object.fromEntries(consumes.map((m) => [m, { schema }])),
      };
    } else if (Array.isArray(r.schema.consumes)) {
      op.requestBody = { required: true, content: Object.fromEntries(consumes.map((m) => [m, {}])) };
    }
    const responses: Json = {};
    const declared = (r.schema.reply ?? r.schema.response) as Record<string, unknown> | undefined;
    if (declared) {
      for (const [code, s] of Object.entries(declared)) responses[code] = response(code, s, components);
    } else {
      responses['200'] = { description: 'Success (JSON)' };
    }
    responses['4XX'] = {
      description: 'Refused: `error` says why, `field` names the input it is about',
      content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorReply' } } },
    };
    op.responses = responses;
    const security: Json[] = [];
    if (r.config.apiTokens !== false) security.push({ apiToken: [] }, { browserSession: [] });
    if (security.length > 0) op.security = security;
    paths[p][r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Atrium API',
      version: info.version,
      description:
        'The HTTP API of the Atrium gateway. Scripts authenticate with an API token (Settings → API tokens) in `Authorization: Bearer atr_...`; the browser UI uses its session cookie and a CSRF header.',
    },
    ...(info.serverUrl ? { servers: [{ url: info.serverUrl }] } : {}),
    tags: Object.keys(TAGS)
      .filter((t) => tags.has(t))
      .concat([...tags].filter((t) => !(t in TAGS)).sort())
      .map((name) => ({ name, ...(TAGS[name] ? { description: TAGS[name] } : {}) })),
    paths: Object.fromEntries(Object.entries(paths).sort(([a], [b]) => a.localeCompare(b))),
    components: {
      schemas: Object.fromEntries(
        Object.entries({ ...components.schemas, ErrorReply: plain(ErrorReply) }).sort(([a], [b]) =>
          a.localeCompare(b),
        ),
      ),
      securitySchemes: {
        apiToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'An API token (atr_...) with the scopes the route needs.',
        },
        browserSession: { type: 'apiKey', in: 'cookie', name: 'atrium_session' },
      },
    },
  };
}
