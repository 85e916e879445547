// Input checking for every route, before its handler: JSON bodies are parsed without prototype keys,
// and each route's body, query and path parameters are checked against its schema from the API contract
// (src/api/). A refusal is a 400 that names the field, in the shape of every other error reply.
import type { FastifyInstance, FastifySchemaCompiler } from 'fastify';
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import Value from 'typebox/value';
import { type FieldProblem, type SchemaComplaint, schemaProblems } from '../api/common.ts';
import { HttpError } from './auth.ts';

/** Object keys that could reach a prototype; no object of the API has a field so named. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** A 400 for input that does not fit the route's schema, naming the first field that does not. */
export class InputError extends HttpError {
  constructor(problems: FieldProblem[]) {
    const first = problems[0]!;
    super(400, first.message, first.field, problems);
  }
}

/** The dotted path of the first forbidden key in a parsed JSON value (iterative: depth costs no stack). */
export function forbiddenKey(value: unknown): string | undefined {
  const stack: [unknown, string][] = [[value, '']];
  while (stack.length > 0) {
    const [v, at] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    for (const k of Object.keys(v)) {
      const field = at ? `${at}.${k}` : k;
      if (FORBIDDEN_KEYS.has(k)) return field;
      stack.push([(v as Record<string, unknown>)[k], field]);
    }
  }
  return undefined;
}

/** Parses a JSON body; refuses empty, malformed and prototype-polluting ones with the field named. */
export function parseJsonBody(text: string): unknown {
  if (text.length === 0) throw new HttpError(400, 'body: empty, but the content type says JSON', 'body');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body: not valid JSON', 'body');
  }
  const key = forbiddenKey(value);
  if (key) throw new HttpError(400, `${key}: a field name the API refuses`, key);
  return value;
}

const PART_NAMES: Record<string, string> = { body: 'body', querystring: 'query', params: 'params' };

/** fastify's validator compiler: typebox's own checker, no type coercion of bodies (a string is no number). */
export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = Compile(schema);
  const part = PART_NAMES[httpPart ?? 'body'] ?? httpPart ?? 'body';
  return (value: unknown) => {
    // Query strings and path parameters are text on the wire: "5" may stand for a number there.
    const v = part === 'body' ? value : Value.Convert(schema, value);
    if (check.Check(v)) return { value: v };
    return { error: new InputError(schemaProblems(schema, check.Errors(v) as SchemaComplaint[], part)) };
  };
};

/** Installs the JSON parser and the validator on the gateway; call before any route is added. */
export function registerValidation(app: FastifyInstance): void {
  app.setValidatorCompiler(validatorCompiler);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
}
