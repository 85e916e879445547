// The API contract's shared pieces: how text, form numbers and optional bodies travel, the error
// reply every refusal uses, and how a schema's complaints become messages that name their field.
// Schemas here check types and sane sizes only; what a value may mean (a partition this user may use,
// a name's characters) is checked where it is used, so those messages stay as they were.
import Type, { type Static, type TProperties, type TSchema } from 'typebox';

/** A description for the reference, when there is one. */
const about = (description?: string) => (description ? { description } : {});

/** Text of at most `maxLength` characters. */
export const Text = (maxLength = 1000, description?: string) =>
  Type.String({ maxLength, ...about(description) });

/** Text, or null for an empty form field. */
export const OptionalText = (maxLength = 1000, description?: string) =>
  Type.Optional(Type.Union([Text(maxLength), Type.Null()], about(description)));

/** A number, the string a plain HTML form sends for one, or null (an empty field; NaN serialises so). */
export const FormNumber = (description?: string) =>
  Type.Optional(Type.Union([Type.Number(), Text(64), Type.Null()], about(description)));

/** A body whose every field is optional may also be left out (null: fastify's "no body"). */
export const OptionalBody = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** One problem with one field of a request; the message starts with the field's name or label. */
export const FieldProblem = Type.Object({ field: Type.String(), message: Type.String() });
export type FieldProblem = Static<typeof FieldProblem>;

/**
 * Every refusal: `error` is a sentence for people; `field` names the input it is about (a body field,
 * a query parameter, a path parameter, or `path` for the URL itself); forms get each problem in `errors`.
 */
export const ErrorReply = Type.Object({
  error: Type.String(),
  field: Type.Optional(Type.String()),
  errors: Type.Optional(Type.Array(FieldProblem)),
});
export type ErrorReply = Static<typeof ErrorReply>;

// ---- replies ---------------------------------------------------------------------------------------
// Reply schemas describe what a route answers (its `schema.reply`, by status). They are the wire types
// the services, the web UI and scripts share, and the OpenAPI document's responses; the gateway does
// not filter replies through them. A schema with a `title` is one named type of the reference.

/** A field that is always there, null when empty. */
/** An object schema that the OpenAPI document names `title` among its components. */
export const Model = <P extends TProperties>(title: string, properties: P) =>
  Type.Object(properties, { title });

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** Done; nothing more to say. */
export const OkReply = Type.Object({ ok: Type.Literal(true) }, { title: 'OkReply' });
export type OkReply = Static<typeof OkReply>;

/** A reply without a body (a redirect, an empty 200): only its description goes into the reference. */
export const NoBody = (description: string) => Type.Unsafe<void>({ description });

/** A reply that is not JSON: text, a file, an event stream. */
export const NotJson = (mediaType: string, description: string) =>
  Type.String({ contentMediaType: mediaType, description });

/** A schema complaint as typebox reports it. */
export interface SchemaComplaint {
  keyword: string;
  schemaPath: string;
  instancePath: string;
  params: object;
  message: string;
}

type Node = Record<string, unknown>;

/** The sub-schema a complaint's schemaPath ("#/properties/cores/anyOf/0") points at. */
function nodeAt(schema: TSchema, schemaPath: string): Node | undefined {
  let node: unknown = schema;
  for (const part of schemaPath.replace(/^#\/?/, '').split('/').filter(Boolean)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Node)[part.replaceAll('~1', '/').replaceAll('~0', '~')];
  }
  return node !== null && typeof node === 'object' ? (node as Node) : undefined;
}

/** "text", "a number or text", "true or false", ... for a schema node. */
export function describeType(node: Node | undefined): string {
  if (!node) return 'something else';
  if (Array.isArray(node.anyOf)) {
    const names = (node.anyOf as Node[]).filter((n) => n.type !== 'null').map(describeType);
    return [...new Set(names)].join(' or ') || 'null';
  }
  if ('const' in node) return JSON.stringify(node.const);
  switch (node.type) {
    case 'string':
      return 'text';
    case 'number':
      return 'a number';
    case 'integer':
      return 'a whole number';
    case 'boolean':
      return 'true or false';
    case 'array':
      return node.items ? `a list of ${plural(describeType(node.items as Node))}` : 'a list';
    case 'object':
      return 'an object';
    case 'null':
      return 'null';
    default:
      return 'something else';
  }
}

function plural(what: string): string {
  if (what === 'text') return 'texts';
  return what.replace(/^an? (.*)$/, '$1s');
}

/** "/apps/0/port" → "apps.0.port"; the root is the request part itself ("body", "query", "params"). */
function fieldOf(instancePath: string, part: string, extra?: string): string {
  const parts = instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
  if (extra !== undefined) parts.push(extra);
  return parts.length > 0 ? parts.join('.') : part;
}

function explain(c: SchemaComplaint, schema: TSchema): string {
  const p = c.params as Record<string, unknown>;
  switch (c.keyword) {
    case 'type':
    case 'anyOf':
      return `must be ${describeType(nodeAt(schema, c.schemaPath))}`;
    case 'required':
      return 'required';
    case 'additionalProperties':
      return 'not a field of this request';
    case 'maxLength':
      return `at most ${p.limit} characters`;
    case 'minLength':
      return `at least ${p.limit} characters`;
    case 'maxItems':
      return `at most ${p.limit} items`;
    case 'minItems':
      return `at least ${p.limit} items`;
    case 'maximum':
      return `at most ${p.limit}`;
    case 'minimum':
      return `at least ${p.limit}`;
    default:
      return c.message;
  }
}

/**
 * Which complaints to tell about a union: a branch of the value's own type that failed on something else
 * (text too long, a list with a wrong item) tells its own; when no branch has the value's type, the
 * union's complaint ("must be a number or text") stands for all of them.
 */
function unheard(complaints: SchemaComplaint[]): Set<SchemaComplaint> {
  const skip = new Set<SchemaComplaint>();
  for (const u of complaints.filter((c) => c.keyword === 'anyOf')) {
    const branches = new Map<string, SchemaComplaint[]>();
    for (const c of complaints) {
      const m = c.schemaPath.startsWith(`${u.schemaPath}/anyOf/`)
        ? /^\d+/.exec(c.schemaPath.slice(u.schemaPath.length + 7))
        : null;
      if (m) branches.set(m[0], [...(branches.get(m[0]) ?? []), c]);
    }
    const wrongType = (i: string) =>
      branches.get(i)!.some((c) => c.keyword === 'type' && c.schemaPath === `${u.schemaPath}/anyOf/${i}`);
    const ofItsType = [...branches.keys()].find((i) => !wrongType(i));
    for (const [i, cs] of branches) if (i !== ofItsType) for (const c of cs) skip.add(c);
    if (ofItsType !== undefined) skip.add(u);
  }
  return skip;
}

/**
 * The problems a schema found, one per field, each message starting with the field ("cores: must be a
 * number or text").
 */
export function schemaProblems(schema: TSchema, complaints: SchemaComplaint[], part: string): FieldProblem[] {
  const skip = unheard(complaints);
  const out = new Map<string, FieldProblem>();
  for (const c of complaints) {
    if (skip.has(c)) continue;
    const p = c.params as Record<string, unknown>;
    const extras =
      c.keyword === 'required'
        ? ((p.requiredProperties as string[] | undefined) ?? [])
        : c.keyword === 'additionalProperties'
          ? ((p.additionalProperties as string[] | undefined) ?? [])
          : [undefined];
    for (const extra of extras) {
      const field = fieldOf(c.instancePath, part, extra);
      if (!out.has(field)) out.set(field, { field, message: `${field}: ${explain(c, schema)}` });
    }
  }
  if (out.size === 0) out.set(part, { field: part, message: `${part}: not in the expected form` });
  return [...out.values()];
}

/**
 * A path's `:id`. Routes check its form themselves, so that an id of the wrong form is answered like one
 * that does not exist ("no such session"), never with a validation error that tells the two apart.
 */
export const IdParams = Type.Object({ id: Type.String() });
export type IdParams = Static<typeof IdParams>;
