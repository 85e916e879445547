// `atrium config check`, beyond the schema: can the users whose sessions run the agent read it? For
// each cluster, the agent (agent.script, or the built-in one) and Node.js (agent.node, or the
// gateway's), checked by their modes on this host where they exist here. Paths that only the nodes
// have cannot be told from here, and are noted as such.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadedConfig } from '../config/load.ts';
import { firstUnreadable, sessionFiles, whyOthersCannot } from '../system/runtime-dir.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface PathProblem {
  /** true: sessions cannot start; false: something the admin should know. */
  error: boolean;
  message: string;
}

/** The executable a bare command name runs (PATH lookup), or the path itself. */
function onPath(cmd: string): string | null {
  if (cmd.includes('/')) return cmd;
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = path.join(dir || '.', cmd);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/** The nearest directory of `p` (or `p`) that exists. */
function existingAncestor(p: string): string {
  let d = path.resolve(p);
  while (!fs.existsSync(d) && d !== '/') d = path.dirname(d);
  return d;
}

export function checkAgentPaths(cfg: LoadedConfig, root = ROOT): PathProblem[] {
  const out: PathProblem[] = [];
  // Every cluster runs the same agent and Node.js, so each path is looked at once.
  const seen = new Map<string, PathProblem | null>();
  const once = (key: string, f: () => PathProblem | null) => {
    if (!seen.has(key)) seen.set(key, f());
    return seen.get(key) ?? null;
  };
  const asGateway = process.getuid?.() === 0 || cfg.clusters.some((c) => c.backend !== 'local');
  for (const c of cfg.clusters) {
    const on = `cluster "${c.name}"`;
    const remote = c.backend !== 'local';
    const add = (p: PathProblem | null) => {
      if (p) out.push({ error: p.error, message: `${on}: ${p.message}` });
    };
    if (!asGateway) continue;
    const script = cfg.agent.script;
    if (script) {
      add(
        once(`script ${script}`, () => {
          if (!fs.existsSync(script))
            return remote
              ? {
                  error: false,
                  message: `agent.script ${script} is not on this host; cannot tell whether users can read it on the nodes`,
                }
              : { error: true, message: `agent.script ${script} does not exist` };
          const why = whyOthersCannot(script);
          if (why)
            return { error: true, message: `agent.script ${script} cannot be read by the users: ${why}` };
          const share = path.resolve(path.dirname(script), '..', '..', 'share');
          const shareWhy = fs.existsSync(share) ? whyOthersCannot(share) : null;
          return shareWhy
            ? {
                error: true,
                message: `the apps' helpers next to agent.script (${share}) cannot be read by the users: ${shareWhy}`,
              }
            : null;
        }),
      );
    } else {
      add(
        once('built-in', () => {
          const why = firstUnreadable(root, sessionFiles(root));
          if (!why) return null;
          const reach = whyOthersCannot(existingAncestor(cfg.runtimeDir));
          if (reach)
            return {
              error: true,
              message: `the users cannot read Atrium's files (${why}), and runtimeDir ${cfg.runtimeDir} is no better: ${reach}`,
            };
          return {
            error: false,
            message: `the users cannot read Atrium's files here (${why}); the gateway places a copy in runtimeDir ${cfg.runtimeDir} at start (it must run as root or own that directory)`,
          };
        }),
      );
    }
    const node = cfg.agent.node ?? process.execPath;
    add(
      once(`node ${node}`, () => {
        const found = onPath(node);
        if (!found || !fs.existsSync(found))
          return remote
            ? {
                error: false,
                message: `agent.node ${node} is not on this host; cannot tell whether users can run it on the nodes`,
              }
            : { error: true, message: `Node.js ${node} does not exist` };
        const why = whyOthersCannot(found, true);
        return why
          ? {
              error: true,
              message: `Node.js ${found}${cfg.agent.node ? ' (agent.node)' : " (the gateway's own)"} cannot be run by the users: ${why}`,
            }
          : null;
      }),
    );
  }
  return out;
}
