// Builds the app catalogue from the built-in apps and a site's entries (inline `apps:` and the
// `appsFile:`), and checks what a schema cannot: complete entries, no secrets on command lines, one
// readiness probe, sockets named where they are used.
import type { AppConfig } from '../config/schema.ts';
import type { AppDefinition } from './types.ts';

export interface CatalogueEntry {
  app: AppConfig;
  /** Where the entry was written, for error messages: key like "apps[2]"... */
  key: string;
  /** ...and the line of the entry, or of one of its keys. */
  lineOf: (subKey?: string) => number | undefined;
  file: string;
}

export interface CatalogueProblem {
  file: string;
  key: string;
  line?: number;
  message: string;
}

const DEFAULT_READY_TIMEOUT = 120;

/**
 * Merges entries onto the built-ins, in order (later entries win). Returns the catalogue and the
 * problems found; the catalogue is only meaningful when there are none.
 */
export function buildCatalogue(
  builtins: readonly AppDefinition[],
  entries: readonly CatalogueEntry[],
): { apps: AppDefinition[]; problems: CatalogueProblem[] } {
  const problems: CatalogueProblem[] = [];
  const byId = new Map<string, Partial<AppDefinition>>(builtins.map((a) => [a.id, structuredClone(a)]));
  const origin = new Map<string, CatalogueEntry>();
  const seenIn = new Map<string, CatalogueEntry>();
  for (const e of entries) {
    const at = (sub: string, message: string) =>
      problems.push({ file: e.file, key: sub ? `${e.key}.${sub}` : e.key, line: e.lineOf(sub), message });
    const id = e.app.id;
    const dupKey = `${e.file}\0${id}`;
    const prev = seenIn.get(dupKey);
    if (prev) {
      const line = prev.lineOf();
      at('id', `duplicate app id "${id}" (also at ${prev.key}${line ? `, line ${line}` : ''})`);
      continue;
    }
    seenIn.set(dupKey, e);
    if (e.app.disabled) {
      byId.delete(id);
      origin.delete(id);
      continue;
    }
    const { disabled: _d, ...fields } = e.app;
    const base = byId.get(id) ?? {};
    const merged: Partial<AppDefinition> = { ...base };
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      if (k === 'ready' && base.ready) {
        // A new probe kind replaces the built-in's probe; a timeout alone only changes the timeout.
        const r = v as Partial<AppDefinition['ready']>;
        const newProbe = r.http !== undefined || r.rfb !== undefined || r.tcp !== undefined;
        merged.ready = (
          newProbe ? { timeoutSeconds: base.ready.timeoutSeconds, ...r } : { ...base.ready, ...r }
        ) as AppDefinition['ready'];
      } else {
        (merged as Record<string, unknown>)[k] = v;
      }
    }
    byId.set(id, merged);
    origin.set(id, e);
  }

  const apps: AppDefinition[] = [];
  for (const [id, a] of byId) {
    const e = origin.get(id);
    const at = (sub: string, message: string) =>
      problems.push({
        file: e?.file ?? '(built-in apps)',
        key: e ? `${e.key}${sub ? `.${sub}` : ''}` : `${id}${sub ? `.${sub}` : ''}`,
        line: e?.lineOf(sub),
        message,
      });
    const missing = (['name', 'command', 'ready'] as const).filter((k) => a[k] === undefined);
    if (missing.length > 0) {
      at('', `missing required key "${missing.join(', ')}" (app "${id}" is not a built-in app to change)`);
      continue;
    }
    const app: AppDefinition = {
      ...(a as AppDefinition),
      id,
      description: a.description ?? '',
      prefix: a.prefix ?? 'keep',
      ready: { ...a.ready!, timeoutSeconds: a.ready!.timeoutSeconds ?? DEFAULT_READY_TIMEOUT },
    };
    if (app.command.some((arg) => arg.includes('{token}'))) {
      at('command', 'must not contain {token}: secrets on a command line show in ps; pass it in env');
    }
    const probes = [app.ready.http !== undefined, !!app.ready.rfb, !!app.ready.tcp].filter(Boolean).length;
    if (probes > 1) at('ready', 'give one of http, rfb or tcp');
    if (app.transport === 'rfb' && app.ready.http !== undefined) {
      at('ready', 'an rfb app speaks no HTTP: use `rfb: true` or `tcp: true`');
    }
    const usesSocket = app.command.some((arg) => arg.includes('{socket}'));
    if (app.unixSocket && !usesSocket) at('command', 'unixSocket is set: pass {socket} to the app');
    if (!app.unixSocket && usesSocket) at('unixSocket', '{socket} is used in command: set unixSocket: true');
    if (!app.unixSocket && !app.command.some((arg) => arg.includes('{port}'))) {
      at('command', 'the app must listen on {port} (or on {socket} with unixSocket: true)');
    }
    for (const k of Object.keys(app.upstreamHeaders ?? {})) {
      if (
        !/^[A-Za-z0-9-]+$/.test(k) ||
        /^(host|connection|upgrade|content-length|transfer-encoding)$/i.test(k)
      ) {
        at('upstreamHeaders', `"${k}" cannot be set upstream`);
      }
    }
    apps.push(app);
  }
  return { apps, problems };
}
