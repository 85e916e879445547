// The API contract covers every route: each /api route declares a summary, the schemas of what it reads
// (path parameters, body, query) and of what it answers, and appears in the OpenAPI document, which is
// valid OpenAPI 3.1; real replies match their declared schemas field for field; docs/api.md is the
// document rendered. The routes are those a real gateway registers (in-process, local backend, every
// optional route on), so a new route is covered without touching this test.
import fs from 'node:fs';
import path from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { TSchema } from 'typebox';
import Value from 'typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorReply } from '../../src/api/common.ts';
import { apiReference, type ReferenceGateway, startReferenceGateway } from '../../src/server/api-doc.ts';
import { openApiPath, type RegisteredRoute } from '../../src/server/openapi.ts';
import { Client } from '../helpers/client.ts';

type Json = Record<string, unknown>;

/** Writes named by their path: they act on what the path names and read no body. */
const ACTIONS_WITHOUT_BODY = new Set([
  'POST /api/sessions/:id/stop',
  'POST /api/jobs/:cluster/:jobId/cancel',
  'POST /api/admin/sessions/:id/stop',
  'POST /api/admin/clusters/:name/drain',
  'POST /api/admin/clusters/:name/undrain',
  'POST /api/admin/announcements/:id/expire',
]);

let ref: ReferenceGateway;
let routes: RegisteredRoute[];
let doc: Json;
let admin: Client;

beforeAll(async () => {
  ref = await startReferenceGateway();
  routes = (ref.gw.ctx.services.get('api.routes') as RegisteredRoute[]).filter((r) =>
    r.url.startsWith('/api/'),
  );
  doc = (await (await fetch(`${ref.gw.url}/api/openapi.json`)).json()) as Json;
  admin = new Client(ref.gw.url);
  const password = fs.readFileSync(path.join(ref.dataDir, 'initial-admin-password'), 'utf8').trim();
  expect((await admin.login('admin', password)).status).toBe(200);
}, 120_000);

afterAll(async () => {
  await ref?.close();
});

const name = (r: RegisteredRoute) => `${r.method} ${r.url}`;

describe('every /api route', () => {
  it('is there to be checked (the reference gateway registered the optional routes)', () => {
    const names = routes.map(name);
    for (const r of ['GET /api/auth/oidc/start', 'POST /api/agent/token', 'PUT /api/files/upload'])
      expect(names).toContain(r);
  });

  it('has a one-line summary', () => {
    const without = routes.filter((r) => typeof r.schema.summary !== 'string' || !r.schema.summary.trim());
    expect(without.map(name)).toEqual([]);
    const long = routes.filter((r) => String(r.schema.summary).includes('\n'));
    expect(long.map(name)).toEqual([]);
  });

  it('declares its path parameters, exactly', () => {
    for (const r of routes) {
      const inUrl = [...r.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]).sort();
      const declared = Object.keys(((r.schema.params as Json | undefined)?.properties ?? {}) as Json).sort();
      expect(declared, name(r)).toEqual(inUrl);
    }
  });

  it('declares the body it reads (writes that act on their path alone read none)', () => {
    const writes = routes.filter((r) => ['POST', 'PUT', 'PATCH'].includes(r.method));
    const without = writes.filter(
      (r) => !r.schema.body && !r.schema.consumes && !ACTIONS_WITHOUT_BODY.has(name(r)),
    );
    expect(without.map(name)).toEqual([]);
    // The list of bodiless writes is of routes that exist and indeed declare no body.
    for (const a of ACTIONS_WITHOUT_BODY) {
      const r = writes.find((w) => name(w) === a);
      expect(r, a).toBeDefined();
      expect(r?.schema.body, a).toBeUndefined();
    }
  });

  it('declares the query it reads', () => {
    const reads = routes.filter((r) => /\.query\b|\bq\(req\)/.test(r.handler.toString()));
    expect(reads.length).toBeGreaterThan(3);
    expect(reads.filter((r) => !r.schema.querystring).map(name)).toEqual([]);
  });

  it('declares what it answers when it succeeds', () => {
    const without = routes.filter(
      (r) => !Object.keys((r.schema.reply ?? {}) as Json).some((code) => /^[23]\d\d$/.test(code)),
    );
    expect(without.map(name)).toEqual([]);
  });

  it('is in the OpenAPI document with its summary, parameters, body and replies', () => {
    const paths = doc.paths as Record<string, Record<string, Json>>;
    for (const r of routes) {
      const op = paths[openApiPath(r.url)]?.[r.method.toLowerCase()];
      expect(op, name(r)).toBeDefined();
      expect(op?.summary, name(r)).toBe(r.schema.summary);
      const inPath = ((op?.parameters ?? []) as Json[]).filter((p) => p.in === 'path').map((p) => p.name);
      expect(inPath.sort(), name(r)).toEqual(
        [...r.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]).sort(),
      );
      if (r.schema.body || r.schema.consumes) expect(op?.requestBody, name(r)).toBeDefined();
      for (const code of Object.keys((r.schema.reply ?? {}) as Json))
        expect((op?.responses as Json | undefined)?.[code], `${name(r)} ${code}`).toBeDefined();
    }
    // Nothing in the document that no route serves.
    const ops = Object.values(paths).reduce((n, o) => n + Object.keys(o).length, 0);
    expect(ops).toBe(routes.length);
  });
});

describe('the OpenAPI document', () => {
  it('is valid OpenAPI 3.1', async () => {
    const v = new Validator();
    const res = await v.validate(doc as never);
    expect(res.errors).toBeUndefined();
    expect(res.valid).toBe(true);
    expect(v.version).toBe('3.1');
  });

  it('the validator does find mistakes', async () => {
    const broken = structuredClone(doc) as { paths: Record<string, Record<string, Json>> };
    broken.paths['/api/sessions']!.get!.parameters = [{ name: 'x' }];
    expect((await new Validator().validate(broken as never)).valid).toBe(false);
  });

  it('names each shared type once, as a component', () => {
    const schemas = (doc.components as Json).schemas as Json;
    for (const t of [
      'SessionView',
      'JobView',
      'QueueRow',
      'ClusterView',
      'FreeTable',
      'TokenView',
      'ErrorReply',
    ])
      expect(schemas[t], t).toBeDefined();
    expect(JSON.stringify(doc.paths)).not.toMatch(/"title":"/);
  });

  it('is served without signing in', async () => {
    const r = await fetch(`${ref.gw.url}/api/openapi.json`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  });

  it('docs/api.md is the rendered document (run `npm run docs:api` when this fails)', () => {
    const committed = fs.readFileSync(path.join(import.meta.dirname, '../../docs/api.md'), 'utf8');
    expect(committed).toBe(apiReference(doc));
  });
});

/** The schema with every object closed: a reply field the contract does not name is a mismatch too. */
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Json = {};
  for (const [k, v] of Object.entries(schema as Json)) out[k] = k === 'const' || k === 'enum' ? v : closed(v);
  if (out.type === 'object' && out.properties && !out.patternProperties && !('additionalProperties' in out))
    out.additionalProperties = false;
  return out;
}

/** Problems of a reply against the schema its route declares for its status. */
function mismatches(r: RegisteredRoute, status: number, body: unknown): string[] {
  const declared = ((r.schema.reply ?? {}) as Record<string, TSchema>)[String(status)];
  const schema = declared ?? (status >= 400 ? ErrorReply : undefined);
  if (!schema) return [`${name(r)}: no schema for status ${status}`];
  const strict = closed(JSON.parse(JSON.stringify(schema))) as TSchema;
  return [...Value.Errors(strict, body)].map(
    (e) => `${name(r)} (${status}) ${e.instancePath || '/'}: ${e.message}`,
  );
}

describe('replies match the contract, field for field', () => {
  it('of every GET route without parameters, and of writes that create something', async () => {
    const created = [
      await admin.post('/api/admin/announcements', {
        message: 'Maintenance on Friday',
        level: 'info',
        hours: 2,
      }),
      await admin.post('/api/tokens', { name: 'contract test', scopes: ['read'], expiresInDays: 1 }),
      await admin.json('PUT', '/api/notifications/prefs', { browser: false }),
    ];
    expect(created.map((c) => c.status)).toEqual([201, 201, 200]);
    const problems: string[] = [];
    const byName = new Map(routes.map((r) => [name(r), r]));
    problems.push(...mismatches(byName.get('POST /api/admin/announcements')!, 201, created[0]!.body));
    problems.push(...mismatches(byName.get('POST /api/tokens')!, 201, created[1]!.body));
    problems.push(...mismatches(byName.get('PUT /api/notifications/prefs')!, 200, created[2]!.body));

    const cluster = ((await admin.get('/api/clusters')).body as { clusters: { name: string }[] }).clusters[0]!
      .name;
    const gets = routes.filter(
      (r) =>
        r.method === 'GET' &&
        !r.url.startsWith('/api/auth/oidc/') &&
        r.url !== '/api/events' &&
        (!r.url.includes(':') || r.url.startsWith('/api/clusters/:name/')),
    );
    let ok = 0;
    for (const r of gets) {
      const url = r.url.replace(':name', encodeURIComponent(cluster));
      // A successful reply that is not JSON (a CSV download) is its text; its refusals are JSON.
      const media = (((r.schema.reply ?? {}) as Record<string, { contentMediaType?: string }>)['200'] ?? {})
        .contentMediaType;
      const res = await admin.req('GET', url).then(async (x) => {
        const text = await x.text();
        return { status: x.status, body: media && x.status === 200 ? text : JSON.parse(text || '{}') };
      });
      if (res.status === 200) ok++;
      problems.push(...mismatches(r, res.status, res.body));
    }
    expect(problems).toEqual([]);
    expect(ok).toBeGreaterThan(15);
  });
});
