// The configuration reference, generated from the schema (src/config/schema.ts) so the docs cannot
// drift from what the loader accepts: every key, its type, default, range and description.
// `npm run docs:config` writes docs/configuration.md; a unit test fails when the committed file is stale.

/** The subset of JSON Schema that typebox produces and the reference reads. */
interface Node {
  type?: string | string[];
  description?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  minItems?: number;
  pattern?: string;
  const?: unknown;
  anyOf?: Node[];
  properties?: Record<string, Node>;
  required?: string[];
  items?: Node;
  patternProperties?: Record<string, Node>;
  /** Reference-only: a key path the reference documents elsewhere (e.g. app entries). */
  [k: string]: unknown;
}

export interface ReferenceRow {
  key: string;
  type: string;
  default: string;
  range: string;
  description: string;
  required: boolean;
}

function typeName(n: Node): string {
  if (n.anyOf) {
    if (n.anyOf.every((a) => a.const !== undefined))
      return n.anyOf.map((a) => JSON.stringify(a.const)).join(' \\| ');
    return n.anyOf.map(typeName).join(' \\| ');
  }
  if (n.const !== undefined) return JSON.stringify(n.const);
  if (n.type === 'array') return n.items ? `list of ${typeName(n.items)}` : 'list';
  if (n.type === 'object' && n.patternProperties) return 'map of string';
  if (n.type === 'object') return 'object';
  return String(n.type ?? 'any');
}

function rangeOf(n: Node): string {
  const parts: string[] = [];
  if (n.minimum !== undefined) parts.push(`≥ ${n.minimum}`);
  if (n.exclusiveMinimum !== undefined) parts.push(`> ${n.exclusiveMinimum}`);
  if (n.maximum !== undefined) parts.push(`≤ ${n.maximum}`);
  if (n.exclusiveMaximum !== undefined) parts.push(`< ${n.exclusiveMaximum}`);
  if (n.minLength !== undefined && n.minLength > 0) parts.push(`non-empty`);
  if (n.minItems !== undefined && n.minItems > 0) parts.push(`at least ${n.minItems}`);
  if (n.pattern !== undefined) parts.push(`matches \`${n.pattern.replace(/\|/g, '\\|')}\``);
  return parts.join(', ');
}

function defaultOf(n: Node): string {
  if (n.default === undefined) return '';
  if (typeof n.default === 'object' && n.default !== null && !Array.isArray(n.default)) {
    return Object.keys(n.default).length === 0 ? '' : `\`${JSON.stringify(n.default)}\``;
  }
  return `\`${JSON.stringify(n.default)}\``;
}

/**
 * Every documented key of a schema, depth first. Objects are listed and then their keys; lists of
 * objects are documented by their entries' keys under `key[]`.
 */
export function referenceRows(schema: Node, prefix = ''): ReferenceRow[] {
  const rows: ReferenceRow[] = [];
  const props = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  for (const [name, child] of Object.entries(props)) {
    const key = prefix ? `${prefix}.${name}` : name;
    rows.push({
      key,
      type: typeName(child),
      default: defaultOf(child),
      range: rangeOf(child.type === 'array' && child.items ? { ...child.items, ...child } : child),
      description: (child.description ?? '').replace(/\s+/g, ' ').trim(),
      required: required.has(name) && child.default === undefined,
    });
    if (child.type === 'object' && child.properties) rows.push(...referenceRows(child, key));
    if (child.type === 'array' && child.items?.type === 'object' && child.items.properties) {
      rows.push(...referenceRows(child.items, `${key}[]`));
    }
  }
  return rows;
}

/** Keys without a description: the reference test lists them so none ships undocumented. */
export function undocumentedKeys(schema: Node): string[] {
  return referenceRows(schema)
    .filter((r) => !r.description)
    .map((r) => r.key);
}

const cell = (s: string) => s.replace(/\n/g, ' ');

/** The whole reference as Markdown: the plain top-level keys first, then one section per object or list. */
export function referenceMarkdown(schema: Node, intro: string): string {
  const props = schema.properties ?? {};
  const isSection = (name: string) => props[name]?.type === 'object' || props[name]?.type === 'array';
  const sections = new Map<string, ReferenceRow[]>([['', []]]);
  for (const r of referenceRows(schema)) {
    const top = r.key.split(/[.[]/)[0]!;
    const section = isSection(top) ? top : '';
    if (!sections.has(section)) sections.set(section, []);
    // A section's own row becomes its introduction.
    if (r.key !== top || section === '') sections.get(section)!.push(r);
  }
  let out = `${intro.trim()}\n`;
  for (const [name, list] of sections) {
    out += `\n## ${name === '' ? 'Top level' : `\`${name}\``}\n\n`;
    const about = name === '' ? '' : (props[name]?.description ?? '').replace(/\s+/g, ' ').trim();
    if (about) out += `${about}\n\n`;
    out += '| Key | Type | Default | Range | Meaning |\n|---|---|---|---|---|\n';
    for (const r of list) {
      const req = r.required ? ' (required)' : '';
      out += `| \`${r.key}\`${req} | ${cell(r.type)} | ${cell(r.default)} | ${cell(r.range)} | ${cell(r.description)} |\n`;
    }
  }
  return out;
}
