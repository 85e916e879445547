import fs from 'node:fs';
import path from 'node:path';
import type { TSchema } from 'typebox';
import Value from 'typebox/value';
import { isMap, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { BUILTIN_APPS } from '../apps/builtin.ts';
import { buildCatalogue, type CatalogueEntry } from '../apps/catalogue.ts';
import type { AppDefinition } from '../apps/types.ts';
import { parseNetwork } from '../core/networks.ts';
import { backendNames, backendOf } from '../scheduler/registry.ts';
import {
  type AppConfig,
  AppSchema,
  type Config,
  ConfigSchema,
  type EnvironmentConfig,
  EnvironmentSchema,
} from './schema.ts';

export interface ConfigProblem {
  /** Dotted key, e.g. clusters[1].slurm.pollSeconds */
  key: string;
  line?: number;
  message: string;
}

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(
      `invalid configuration in ${file}:\n` +
        problems
          .map((p) => `  ${p.key || '(top level)'}${p.line ? ` (line ${p.line})` : ''}: ${p.message}`)
          .join('\n'),
    );
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig extends Config {
  /** Absolute path of the file read, or '(defaults)'. */
  source: string;
  /** The app catalogue after merging the site's entries into the built-in ones. */
  appCatalogue: AppDefinition[];
}

function pointerToKey(pointer: string): string[] {
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function keyString(parts: string[]): string {
  return parts.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

/** Finds the line of a key path in the YAML document (the deepest node that exists). */
function lineOf(doc: ReturnType<typeof parseDocument>, lc: LineCounter, parts: string[]): number | undefined {
  let node: unknown = doc.contents;
  let offset: number | undefined;
  for (const part of parts) {
    if (isMap(node)) {
      const pair = node.items.find((it) => String((it.key as { value?: unknown })?.value ?? it.key) === part);
      if (!pair) break;
      offset = (pair.key as YamlNode)?.range?.[0];
      node = pair.value;
    } else if (isSeq(node)) {
      const item = node.items[Number(part)] as YamlNode | undefined;
      if (!item) break;
      offset = item.range?.[0];
      node = item;
    } else break;
  }
  if (offset === undefined) return undefined;
  return lc.linePos(offset).line;
}

function describe(e: { keyword: string; message: string; params: Record<string, unknown> }): string {
  if (e.keyword === 'additionalProperties') {
    const extra = (e.params.additionalProperties as string[] | undefined)?.join(', ');
    return `unknown key${extra ? ` "${extra}"` : ''}`;
  }
  if (e.keyword === 'required') {
    const missing = (e.params.requiredProperties as string[] | undefined)?.join(', ');
    return `missing required key${missing ? ` "${missing}"` : ''}`;
  }
  return e.message;
}

/** Parses and validates configuration text; throws ConfigError naming each bad key and its line. */
export function parseConfig(text: string, file = '(inline)', baseDir = process.cwd()): LoadedConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({
        key: '',
        line: lc.linePos(e.pos[0]).line,
        message: e.message.split('\n')[0] ?? 'YAML error',
      })),
    );
  }
  const raw = (doc.toJS() ?? {}) as unknown;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(file, [{ key: '', line: 1, message: 'the file must hold a mapping of keys' }]);
  }
  const withDefaults = Value.Default(ConfigSchema, structuredClone(raw)) as unknown;
  const problems: ConfigProblem[] = schemaProblems(ConfigSchema, withDefaults, doc, lc, [], []);
  if (problems.length > 0) throw new ConfigError(file, problems);
  const cfg = withDefaults as Config;

  // Rules a schema cannot say.
  const names = new Set<string>();
  cfg.clusters.forEach((c, i) => {
    const at = (k: string) => ({
      key: `clusters[${i}].${k}`,
      line: lineOf(doc, lc, ['clusters', String(i), k]),
    });
    if (names.has(c.name)) problems.push({ ...at('name'), message: `duplicate cluster name "${c.name}"` });
    names.add(c.name);
    const backend = backendOf(c.backend);
    if (!backend) {
      problems.push({
        ...at('backend'),
        message: `unknown backend "${c.backend}" (known: ${backendNames().join(', ')})`,
      });
    } else if (backend.settingsKey && !c[backend.settingsKey]) {
      const k = backend.settingsKey;
      problems.push({ ...at(k), message: `a ${c.backend} cluster needs a "${k}:" section` });
    }
    if (c.defaultHours > c.maxHours) {
      problems.push({ ...at('defaultHours'), message: `must not exceed maxHours (${c.maxHours})` });
    }
    if (c.projectAccess && c.backend !== 'slurm') {
      problems.push({
        ...at('projectAccess'),
        message: `needs a Slurm cluster with accounting (the associations come from sacctmgr), not backend "${c.backend}"`,
      });
    }
  });
  // Every address list is read as networks here, so a malformed one is named by its key, not found at run time.
  const networkLists: [string[], string[] | undefined][] = [
    [['sourceNetworks', 'allow'], cfg.sourceNetworks.allow],
    [['server', 'trustProxy'], Array.isArray(cfg.server.trustProxy) ? cfg.server.trustProxy : undefined],
    ...cfg.clusters.map((c, i): [string[], string[] | undefined] => [
      ['clusters', String(i), 'sourceNetworks', 'allow'],
      c.sourceNetworks?.allow,
    ]),
  ];
  for (const [at, list] of networkLists) {
    list?.forEach((entry, j) => {
      const r = parseNetwork(entry);
      if (!r.ok)
        problems.push({
          key: keyString([...at, String(j)]),
          line: lineOf(doc, lc, [...at, String(j)]),
          message: r.why,
        });
    });
  }
  if (!cfg.auth.local.enabled && !cfg.auth.oidc && !cfg.auth.ldap) {
    problems.push({ key: 'auth', line: lineOf(doc, lc, ['auth']), message: 'no sign-in method is enabled' });
  }
  const oidc = cfg.auth.oidc;
  if (oidc && !oidc.allowInsecure && !oidc.issuer.startsWith('https://')) {
    problems.push({
      key: 'auth.oidc.issuer',
      line: lineOf(doc, lc, ['auth', 'oidc', 'issuer']),
      message: 'must be an https:// URL (allowInsecure: true is for test providers only)',
    });
  }
  const ldap = cfg.auth.ldap;
  if (ldap && !ldap.userDnTemplate && !ldap.searchBase) {
    problems.push({
      key: 'auth.ldap',
      line: lineOf(doc, lc, ['auth', 'ldap']),
      message: 'set userDnTemplate, or searchBase (with bindDn and bindPassword)',
    });
  }
  if (ldap?.userDnTemplate && !ldap.userDnTemplate.includes('{username}')) {
    problems.push({
      key: 'auth.ldap.userDnTemplate',
      line: lineOf(doc, lc, ['auth', 'ldap', 'userDnTemplate']),
      message: 'must contain {username}',
    });
  }
  if (cfg.server.publicUrl && !/^https?:\/\/[^/]+/.test(cfg.server.publicUrl)) {
    problems.push({
      key: 'server.publicUrl',
      line: lineOf(doc, lc, ['server', 'publicUrl']),
      message: 'must be an http(s) URL',
    });
  }
  if (problems.length > 0) throw new ConfigError(file, problems);

  // A dataDir written in the file is relative to the file; the default one (./data) to the working
  // directory, as without a file, so `-c /dev/null` or a file in /etc never puts data next to itself.
  const dataDirGiven = (raw as Record<string, unknown>).dataDir !== undefined;
  cfg.dataDir = path.resolve(dataDirGiven ? baseDir : process.cwd(), cfg.dataDir);

  // The catalogue: built-ins, then the apps file, then inline entries (later ones win).
  const entries: CatalogueEntry[] = [];
  if (cfg.appsFile) {
    const side = readListFile<AppConfig>(path.resolve(baseDir, cfg.appsFile), 'apps', AppSchema);
    side.items.forEach((app, i) => {
      entries.push({ app, key: `apps[${i}]`, lineOf: (k) => side.lineOf(i, k), file: side.file });
    });
  }
  cfg.apps.forEach((app, i) => {
    const at = ['apps', String(i)];
    entries.push({ app, key: `apps[${i}]`, lineOf: (k) => lineOf(doc, lc, k ? [...at, k] : at), file });
  });
  const catalogue = buildCatalogue(BUILTIN_APPS, entries);
  if (cfg.environmentsFile) {
    const side = readListFile<EnvironmentConfig>(
      path.resolve(baseDir, cfg.environmentsFile),
      'environments',
      EnvironmentSchema,
    );
    // Without an inline `environments:`, the file's list replaces the default one.
    if ((raw as Record<string, unknown>).environments === undefined) cfg.environments = [];
    const seen = new Set(cfg.environments.map((e) => e.id));
    side.items.forEach((env, i) => {
      if (seen.has(env.id)) {
        catalogue.problems.push({
          file: side.file,
          key: `environments[${i}].id`,
          line: side.lineOf(i, 'id'),
          message: `duplicate environment id "${env.id}"`,
        });
      }
      seen.add(env.id);
      cfg.environments.push(env);
    });
  }
  const clusterNames = new Set(cfg.clusters.map((c) => c.name));
  for (const e of entries) {
    for (const c of e.app.clusters ?? []) {
      if (!clusterNames.has(c)) {
        catalogue.problems.push({
          file: e.file,
          key: `${e.key}.clusters`,
          line: e.lineOf('clusters'),
          message: `unknown cluster "${c}"`,
        });
      }
    }
  }
  if (catalogue.problems.length > 0) {
    const first = catalogue.problems[0]!.file;
    throw new ConfigError(
      first,
      catalogue.problems
        .filter((p) => p.file === first)
        .map(({ key, line, message }) => ({ key, line, message })),
    );
  }
  return { ...cfg, source: file, appCatalogue: catalogue.apps };
}

/** Problems of a value against a schema, each with its dotted key and its line in `doc`. */
function schemaProblems(
  schema: TSchema,
  value: unknown,
  doc: ReturnType<typeof parseDocument>,
  lc: LineCounter,
  keyBase: string[],
  docBase: string[],
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (Value.Check(schema, value)) return problems;
  const seen = new Set<string>();
  for (const e of Value.Errors(schema, value)) {
    if (e.keyword === 'boolean') continue; // repeated by additionalProperties below
    const parts = pointerToKey(e.instancePath);
    if (e.keyword === 'additionalProperties') {
      for (const extra of (e.params as { additionalProperties?: string[] }).additionalProperties ?? []) {
        const p = [...parts, extra];
        const k = keyString([...keyBase, ...p]);
        if (seen.has(k)) continue;
        seen.add(k);
        problems.push({ key: k, line: lineOf(doc, lc, [...docBase, ...p]), message: 'unknown key' });
      }
      continue;
    }
    const k = keyString([...keyBase, ...parts]);
    if (seen.has(k)) continue;
    seen.add(k);
    problems.push({ key: k, line: lineOf(doc, lc, [...docBase, ...parts]), message: describe(e as never) });
  }
  return problems;
}

/**
 * A side file of list entries (apps, environments): a YAML list, or a mapping with that one key
 * holding the list. Each entry is validated; problems name the key and line in that file.
 */
export function readListFile<T>(
  abs: string,
  key: string,
  itemSchema: TSchema,
): { file: string; items: T[]; lineOf: (index: number, subKey?: string) => number | undefined } {
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (e) {
    throw new ConfigError(abs, [{ key: '', message: `cannot read the file: ${(e as Error).message}` }]);
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      abs,
      doc.errors.map((e) => ({
        key: '',
        line: e.linePos?.[0]?.line,
        message: e.message.split('\n')[0] ?? 'YAML error',
      })),
    );
  }
  const raw = (doc.toJS() ?? []) as unknown;
  let list: unknown;
  let docBase: string[] = [];
  if (Array.isArray(raw)) list = raw;
  else if (typeof raw === 'object' && raw !== null && Object.keys(raw).every((k) => k === key)) {
    list = (raw as Record<string, unknown>)[key] ?? [];
    docBase = [key];
  }
  if (!Array.isArray(list)) {
    throw new ConfigError(abs, [
      { key: '', line: 1, message: `the file must hold a list of ${key}, or "${key}:" with that list` },
    ]);
  }
  const problems: ConfigProblem[] = [];
  const items: T[] = [];
  list.forEach((item, i) => {
    const v = Value.Default(itemSchema, structuredClone(item)) as unknown;
    problems.push(...schemaProblems(itemSchema, v, doc, lc, [`${key}[${i}]`], [...docBase, String(i)]));
    items.push(v as T);
  });
  if (problems.length > 0) throw new ConfigError(abs, problems);
  return {
    file: abs,
    items,
    lineOf: (i, k) => lineOf(doc, lc, k ? [...docBase, String(i), k] : [...docBase, String(i)]),
  };
}

export function loadConfig(file?: string): LoadedConfig {
  if (!file) return parseConfig('{}', '(defaults)');
  const abs = path.resolve(file);
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (e) {
    throw new ConfigError(abs, [{ key: '', message: `cannot read the file: ${(e as Error).message}` }]);
  }
  return parseConfig(text, abs, path.dirname(abs));
}

export function databaseUrl(cfg: Config): string {
  return cfg.database.url ?? `sqlite:${path.join(cfg.dataDir, 'atrium.db')}`;
}

export function publicUrl(cfg: Config, boundPort?: number): string {
  if (cfg.server.publicUrl) return cfg.server.publicUrl.replace(/\/+$/, '');
  const host = cfg.server.host === '0.0.0.0' || cfg.server.host === '::' ? '127.0.0.1' : cfg.server.host;
  return `http://${host}:${boundPort ?? cfg.server.port}`;
}
