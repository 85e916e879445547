// The things the load goes through: nothing (direct), the Atrium gateway, and configurable-http-proxy
// started the way JupyterHub starts it (plus a variant with its keep-alive option).
import crypto from 'node:crypto';
import path from 'node:path';
import {
  type Child,
  CPU_LOAD,
  CPU_PROXY,
  freePort,
  nodeArgv,
  ROOT,
  start,
  stop,
  waitForJson,
  waitForPort,
} from './lib.ts';

export type TargetKind = 'direct' | 'ours' | 'ours_relay' | 'ours_tunnel' | 'chp' | 'chp_keepalive';
export const TARGET_KINDS: TargetKind[] = [
  'direct',
  'ours',
  'ours_relay',
  'ours_tunnel',
  'chp',
  'chp_keepalive',
];

export const LABELS: Record<TargetKind, string> = {
  direct: 'direct (no proxy)',
  ours: 'Atrium gateway',
  ours_relay: "Atrium gateway, agent's relay",
  ours_tunnel: 'Atrium gateway, dial-out tunnel',
  chp: 'CHP 5.3 (as JupyterHub runs it)',
  chp_keepalive: 'CHP 5.3 --keep-alive-timeout',
};

export interface Upstream {
  child: Child;
  port: number;
}

/** Starts the trivial app on the load CPU. */
export async function startUpstream(opts: { port?: number; flaky?: boolean } = {}): Promise<Upstream> {
  const args = ['--port', String(opts.port ?? 0)];
  if (opts.flaky) args.push('--flaky');
  const child = start(opts.flaky ? 'flaky-upstream' : 'upstream', nodeArgv('upstream.ts', args), {
    cpu: CPU_LOAD,
  });
  const { port } = await waitForJson<{ port: number }>(child, 'port');
  return { child, port };
}

export interface RouteSpec {
  /** Session id in /user/bench/<id>/. */
  id: string;
  port: number;
}

export interface Target {
  kind: TargetKind;
  /** http://127.0.0.1:port */
  base: string;
  /** Headers every request sends (the gateway's cookie; a look-alike for the others). */
  headers: Record<string, string>;
  /** The process to measure (absent for direct). */
  child?: Child;
  close(): Promise<void>;
}

export const routePath = (id: string) => `/user/bench/${id}/`;

/** A cookie of the same shape and size as the gateway's, so every target gets the same request bytes. */
const lookAlikeCookie = () => `atrium_session=${crypto.randomBytes(32).toString('base64url')}`;

const CHP_BIN = path.join(ROOT, 'node_modules', 'configurable-http-proxy', 'bin', 'configurable-http-proxy');
const CHP_PROBE = path.join(ROOT, 'bench', 'proxy', 'chp-probe.mjs');

/**
 * Starts one target in front of the given routes. For `direct`, the first route's upstream is used
 * as is (it ignores the path).
 */
export async function startTarget(kind: TargetKind, routes: RouteSpec[]): Promise<Target> {
  if (kind === 'direct') {
    return {
      kind,
      base: `http://127.0.0.1:${routes[0]!.port}`,
      headers: { Cookie: lookAlikeCookie() },
      close: async () => undefined,
    };
  }
  if (kind === 'ours' || kind === 'ours_relay' || kind === 'ours_tunnel') {
    // The agent's side (relay or tunnel) runs beside the app, on the load CPU, as on a node.
    const secret = crypto.randomBytes(24).toString('base64url');
    const agents: Child[] = [];
    const args: string[] = [];
    for (const r of routes) {
      if (kind === 'ours') args.push('--route', `${r.id}=${r.port}`);
      else if (kind === 'ours_tunnel') args.push('--tunnel-route', `${r.id}=${secret}`);
      else {
        const relay = start(
          'relay',
          nodeArgv('agent-side.ts', ['relay', '--to', String(r.port), '--secret', secret]),
          {
            cpu: CPU_LOAD,
          },
        );
        agents.push(relay);
        const { relay: port } = await waitForJson<{ relay: number }>(relay, 'relay');
        args.push('--relay-route', `${r.id}=${port}=${secret}`);
      }
    }
    const child = start(kind, nodeArgv('ours.ts', args, ['--expose-gc']), { cpu: CPU_PROXY, ipc: true });
    const ready = await waitForJson<{ port: number; cookie: string }>(child, 'bench', 60_000);
    if (kind === 'ours_tunnel') {
      for (const r of routes) {
        const argv = [
          'tunnel',
          '--to',
          String(r.port),
          '--secret',
          secret,
          '--hub',
          `http://127.0.0.1:${ready.port}`,
        ];
        const tunnel = start(
          'tunnel',
          nodeArgv('agent-side.ts', [...argv, '--session', r.id, '--app', 'bench']),
          {
            cpu: CPU_LOAD,
          },
        );
        agents.push(tunnel);
        await waitForJson(tunnel, 'tunnel');
      }
    }
    return {
      kind,
      base: `http://127.0.0.1:${ready.port}`,
      headers: { Cookie: ready.cookie },
      child,
      close: async () => {
        await stop(child);
        for (const a of agents) await stop(a);
      },
    };
  }
  // configurable-http-proxy, with the command line JupyterHub 4/5 builds in ConfigurableHTTPProxy.start():
  //   configurable-http-proxy --ip <ip> --port <port> --api-ip <ip> --api-port <port>
  //     --error-target <hub url>/hub/error          (env CONFIGPROXY_AUTH_TOKEN=<token>)
  // The hub is not running here, so the error target is the (always up) first upstream.
  const port = await freePort();
  const apiPort = await freePort();
  const token = crypto.randomBytes(24).toString('hex');
  const args = [
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--api-ip',
    '127.0.0.1',
    '--api-port',
    String(apiPort),
    '--error-target',
    `http://127.0.0.1:${routes[0]!.port}/hub/error`,
  ];
  // CHP 5.x always pools upstream sockets (http.Agent keepAlive); its only keep-alive option is the
  // idle timeout of client connections (default 5 s). Here it gets the gateway's 65 s.
  if (kind === 'chp_keepalive') args.push('--keep-alive-timeout', '65000');
  const child = start(kind, [process.execPath, '--expose-gc', '--import', CHP_PROBE, CHP_BIN, ...args], {
    cpu: CPU_PROXY,
    ipc: true,
    env: { CONFIGPROXY_AUTH_TOKEN: token },
  });
  await waitForPort(port);
  await waitForPort(apiPort);
  // Routes as JupyterHub adds them: POST /api/routes/<routespec without trailing slash>.
  for (const r of routes) {
    const res = await fetch(`http://127.0.0.1:${apiPort}/api/routes${routePath(r.id).replace(/\/$/, '')}`, {
      method: 'POST',
      headers: { authorization: `token ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ target: `http://127.0.0.1:${r.port}`, jupyterhub: true }),
    });
    if (res.status !== 201) throw new Error(`CHP refused the route: ${res.status} ${await res.text()}`);
  }
  return {
    kind,
    base: `http://127.0.0.1:${port}`,
    headers: { Cookie: lookAlikeCookie() },
    child,
    close: () => stop(child),
  };
}

/** One request through the target, to check it answers 200 with the app's body before measuring. */
export async function checkTarget(t: Target, id: string): Promise<void> {
  const res = await fetch(t.base + routePath(id), { headers: t.headers });
  const body = await res.text();
  if (res.status !== 200 || body !== 'hello world\n') {
    throw new Error(`${t.kind}: expected 200 "hello world", got ${res.status} ${body.slice(0, 200)}`);
  }
}
