// docs/api.md: the OpenAPI document of the gateway (src/server/openapi.ts) rendered for people, per
// area: each route's method, path, summary, parameters, body fields and replies, then every named
// type. The document is the one a gateway serves at /api/openapi.json, taken from a throwaway gateway
// with every optional route switched on, so the reference lists every route there is.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { parseConfig } from '../config/load.ts';
import { type Gateway, startGateway } from './gateway.ts';

type Json = Record<string, unknown>;

/** Config of the throwaway gateway: every optional route on, nothing run or copied for sessions. */
function referenceConfig(dataDir: string): string {
  return [
    'server:',
    '  host: 127.0.0.1',
    '  port: 0',
    `dataDir: ${JSON.stringify(dataDir)}`,
    'installPackages: false',
    'log:',
    '  level: error',
    // Named agent files: the gateway neither builds nor copies the agent for sessions.
    'agent:',
    `  node: ${JSON.stringify(process.execPath)}`,
    '  script: /nonexistent/atrium-agent.mjs',
    // OpenID Connect's routes exist only when it is configured; nothing is asked of this provider.
    'auth:',
    '  oidc:',
    '    issuer: http://127.0.0.1:9/',
    '    clientId: atrium-reference',
    '    allowInsecure: true',
    '    passTokensToSessions: true',
    '',
  ].join('\n');
}

export interface ReferenceGateway {
  gw: Gateway;
  /** Its data directory (the first administrator's password is in `initial-admin-password`). */
  dataDir: string;
  close(): Promise<void>;
}

/** A throwaway gateway in a temporary directory with every optional route (for the reference and its tests). */
export async function startReferenceGateway(): Promise<ReferenceGateway> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-api-doc-'));
  const dataDir = path.join(dir, 'data');
  try {
    const cfg = parseConfig(referenceConfig(dataDir), path.join(dir, 'atrium.yaml'), dir);
    const gw = await startGateway(cfg, {
      log: pino({ level: 'silent' }),
      print: () => undefined,
      adminUnixUser: 'nobody',
    });
    return {
      gw,
      dataDir,
      async close() {
        try {
          await gw.close();
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** The OpenAPI document a gateway with every optional route serves (started and stopped here). */
export async function referenceApiDocument(): Promise<Json> {
  const ref = await startReferenceGateway();
  try {
    const r = await fetch(`${ref.gw.url}/api/openapi.json`);
    if (!r.ok) throw new Error(`/api/openapi.json answered ${r.status}`);
    return (await r.json()) as Json;
  } finally {
    await ref.close();
  }
}

// ---- rendering ------------------------------------------------------------------------------------

const REF = '#/components/schemas/';

/** GitHub's anchor of a heading. */
function anchor(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^a-z0-9 _-]/g, '')
    .replace(/ /g, '-');
}

/** Escapes what would break a table cell. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n+/g, ' ');
}

/** A schema as a short type expression: `string`, `SessionView[]`, `"a" | "b"`, `{ ok: true }`. */
function typeOf(s: Json | undefined, depth = 0): string {
  if (!s || Object.keys(s).filter((k) => k !== 'description' && k !== 'title').length === 0) return 'any';
  if (typeof s.$ref === 'string') {
    const name = s.$ref.slice(REF.length);
    return `[${name}](#${anchor(name)})`;
  }
  if ('const' in s) return JSON.stringify(s.const);
  if (Array.isArray(s.enum)) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (Array.isArray(s.anyOf)) return (s.anyOf as Json[]).map((b) => typeOf(b, depth)).join(' | ');
  switch (s.type) {
    case 'array': {
      const item = typeOf(s.items as Json | undefined, depth);
      return /[ |]/.test(item) && !item.startsWith('{') ? `(${item})[]` : `${item}[]`;
    }
    case 'object': {
      const pattern = s.patternProperties as Record<string, Json> | undefined;
      if (pattern) return `{ [key]: ${typeOf(Object.values(pattern)[0], depth + 1)} }`;
      const props = s.properties as Record<string, Json> | undefined;
      if (!props || Object.keys(props).length === 0) return 'object';
      if (depth > 1) return 'object';
      const required = new Set((s.required ?? []) as string[]);
      const fields = Object.entries(props).map(
        ([k, v]) => `${k}${required.has(k) ? '' : '?'}: ${typeOf(v, depth + 1)}`,
      );
      return `{ ${fields.join(', ')} }`;
    }
    case 'string':
      return typeof s.contentMediaType === 'string' ? `text (${s.contentMediaType})` : 'string';
    default:
      return typeof s.type === 'string' ? s.type : 'any';
  }
}

/** What a field's schema limits: "at most 200 characters", "≥ 1". */
function limits(s: Json): string[] {
  const out: string[] = [];
  if (typeof s.maxLength === 'number') out.push(`at most ${s.maxLength} characters`);
  if (typeof s.minLength === 'number') out.push(`at least ${s.minLength} characters`);
  if (typeof s.maxItems === 'number') out.push(`at most ${s.maxItems} items`);
  if (typeof s.minimum === 'number') out.push(`≥ ${s.minimum}`);
  if (typeof s.maximum === 'number') out.push(`≤ ${s.maximum}`);
  // A union's limits are told when its branches are of one type (not a form number's text length).
  const branches = ((s.anyOf ?? []) as Json[]).filter((b) => b.type !== 'null');
  if (new Set(branches.map((b) => b.type)).size === 1) for (const b of branches) out.push(...limits(b));
  return [...new Set(out)];
}

function describe(s: Json): string {
  const text = typeof s.description === 'string' ? s.description : '';
  const l = limits(s).join(', ');
  return cell([text, l ? `${l[0]!.toUpperCase()}${l.slice(1)}.` : ''].filter(Boolean).join(' '));
}

/** A table of an object schema's fields. */
function fieldTable(s: Json, what = 'Field'): string[] {
  const props = (s.properties ?? {}) as Record<string, Json>;
  const required = new Set((s.required ?? []) as string[]);
  const rows = Object.entries(props).map(
    ([k, v]) => `| \`${k}\` | ${cell(typeOf(v))} | ${required.has(k) ? 'yes' : ''} | ${describe(v)} |`,
  );
  return [`| ${what} | Type | Required | Description |`, '|---|---|---|---|', ...rows];
}

function resolve(doc: Json, s: Json): Json {
  if (typeof s.$ref !== 'string') return s;
  const schemas = (doc.components as Json).schemas as Record<string, Json>;
  return schemas[s.$ref.slice(REF.length)] ?? s;
}

function operation(doc: Json, method: string, p: string, op: Json): string[] {
  const out = [`### \`${method.toUpperCase()} ${p}\``, ''];
  if (op.summary) out.push(`${op.summary}.`, '');
  if (op.description) out.push(String(op.description), '');
  if (!op.security) out.push('Not signed in with a user: see the summary for the credential it takes.', '');
  const params = (op.parameters ?? []) as Json[];
  if (params.length > 0) {
    out.push('| Parameter | In | Type | Required | Description |', '|---|---|---|---|---|');
    for (const x of params) {
      const s = x.schema as Json;
      out.push(
        `| \`${x.name}\` | ${x.in} | ${cell(typeOf(s))} | ${x.required ? 'yes' : ''} | ${describe({ ...s, ...(x.description ? { description: x.description } : {}) })} |`,
      );
    }
    out.push('');
  }
  const body = op.requestBody as Json | undefined;
  if (body) {
    const content = body.content as Record<string, Json>;
    for (const [media, c] of Object.entries(content)) {
      const schema = c.schema ? resolve(doc, c.schema as Json) : undefined;
      const optional = body.required ? '' : ', may be left out';
      if (!schema) {
        out.push(`Body: \`${media}\` (the bytes as they are).`, '');
      } else if (schema.type === 'object' && schema.properties) {
        out.push(`Body (\`${media}\`${optional}):`, '', ...fieldTable(schema), '');
      } else {
        out.push(`Body (\`${media}\`${optional}): ${typeOf(c.schema as Json)}`, '');
      }
    }
  }
  const responses = (op.responses ?? {}) as Record<string, Json>;
  out.push('| Reply | Body | Description |', '|---|---|---|');
  for (const [code, r] of Object.entries(responses)) {
    const content = r.content as Record<string, Json> | undefined;
    const bodies = content
      ? Object.entries(content).map(([media, c]) =>
          media === 'application/json' ? typeOf(c.schema as Json) : `\`${media}\``,
        )
      : ['—'];
    out.push(`| ${code} | ${cell(bodies.join(', '))} | ${cell(String(r.description ?? ''))} |`);
  }
  out.push('');
  return out;
}

function typeSection(name: string, s: Json): string[] {
  const out = [`### ${name}`, ''];
  if (typeof s.description === 'string') out.push(s.description, '');
  if (s.type === 'object' && s.properties) out.push(...fieldTable(s));
  else out.push(`\`${typeOf({ ...s, title: undefined })}\``.replace(/\[([^\]]+)\]\(#[^)]+\)/g, '$1'));
  out.push('');
  return out;
}

const INTRO = `# HTTP API reference

<!-- Generated from the route schemas (src/api/) by \`npm run docs:api\`; edit the schemas, not this file. -->

Everything the web UI does goes through this API, and scripts may use it too. A gateway serves this
description, for the routes it has, as OpenAPI 3.1 at \`/api/openapi.json\` (no sign-in needed), for
client generators and API tools.

- **Signing in.** Scripts send an API token (Settings → API tokens in the web UI) as
  \`Authorization: Bearer atr_...\`. A token has scopes: \`sessions\`, \`jobs\` and \`files\` for those
  areas, \`read\` to look (GET) at sessions, jobs and the live events. Tokens cannot create tokens or do
  administration. The browser uses its session cookie and sends its CSRF token in \`X-CSRF-Token\` on
  every write.
- **Requests.** Bodies are JSON (\`Content-Type: application/json\`) unless said otherwise. Every body,
  query and path parameter is checked against the schemas below before anything happens (a value of
  the wrong type is refused with 400 naming the field).
- **Replies.** JSON; times are epoch milliseconds. A refusal has a 4xx status and the body
  \`{ "error": "...", "field": "..." }\`: \`error\` is a sentence for people, \`field\` names the input it
  is about (a body field, a query or path parameter, or \`path\` for the URL itself), and forms get
  every problem in \`errors\`. A 503 means the database or the scheduler is unavailable for a moment.
- **Rate limit.** API requests count towards \`auth.apiRequestsPerMinute\` per user (or address); past
  it the answer is 429 with \`Retry-After\`.
`;

/** The reference in Markdown. */
export function apiReference(doc: Json): string {
  const paths = doc.paths as Record<string, Record<string, Json>>;
  const tags = (doc.tags ?? []) as { name: string; description?: string }[];
  const byTag = new Map<string, [string, string, Json][]>();
  for (const [p, ops] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const tag = ((op.tags ?? ['api']) as string[])[0]!;
      byTag.set(tag, [...(byTag.get(tag) ?? []), [method, p, op]]);
    }
  }
  const order = ['get', 'post', 'put', 'patch', 'delete'];
  const out = [INTRO, '## Contents', ''];
  for (const t of tags)
    out.push(`- [${t.name}](#${anchor(t.name)})${t.description ? `: ${t.description}` : ''}`);
  out.push('- [Types](#types)', '');
  for (const t of tags) {
    out.push(`## ${t.name}`, '');
    if (t.description) out.push(t.description, '');
    const ops = (byTag.get(t.name) ?? []).sort(
      ([ma, pa], [mb, pb]) => pa.localeCompare(pb) || order.indexOf(ma) - order.indexOf(mb),
    );
    for (const [method, p, op] of ops) out.push(...operation(doc, method, p, op));
  }
  out.push('## Types', '');
  const schemas = (doc.components as Json).schemas as Record<string, Json>;
  for (const [name, s] of Object.entries(schemas)) out.push(...typeSection(name, s));
  return `${out
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}
