// Connections from the gateway to apps, for the two cases plain host:port does not cover:
//
// - A Unix socket in the user's session dir. The gateway usually runs as root, and the user owns that
//   directory: a symlink planted there could point root's connect() at any socket on the host (a
//   container runtime's, systemd's...). So the connect() runs with the user's credentials: the kernel
//   then allows exactly the sockets the user could open anyway. Unix-socket connect() is synchronous in
//   libuv, so the switch lasts only for that one system call on this thread.
// - The agent's relay on a remote node (TCP): every new connection starts with a line carrying the
//   session's secret, which the relay checks before passing bytes on to the app's socket.
import http from 'node:http';
import net from 'node:net';
import { RELAY_MAGIC } from '../apps/types.ts';
import type { RouteTarget } from './routes.ts';

export interface SocketOwner {
  uid: number;
  gid: number;
}

/** Connects to a Unix socket with the owner's uid, gid and only their primary group. */
export function connectUnixAs(socketPath: string, owner?: SocketOwner): net.Socket {
  const asRoot = process.getuid?.() === 0 && process.geteuid?.() === 0;
  if (!asRoot || !owner || owner.uid === 0) return net.connect(socketPath);
  const groups = process.getgroups!();
  const egid = process.getegid!();
  process.setgroups!([owner.gid]);
  try {
    process.setegid!(owner.gid);
    try {
      process.seteuid!(owner.uid);
      try {
        return net.connect(socketPath);
      } finally {
        process.seteuid!(0);
      }
    } finally {
      process.setegid!(egid);
    }
  } finally {
    process.setgroups!(groups);
  }
}

/** The first bytes of every connection to an agent relay. */
export function relayPreamble(secret: string): string {
  return `${RELAY_MAGIC} ${secret}\n`;
}

/** A connection to a route's app, as `net.connect` would give (errors arrive as events). */
export function connectTarget(t: RouteTarget): net.Socket {
  if (t.socketPath) return connectUnixAs(t.socketPath, t.owner);
  const s = net.connect(t.port, t.host);
  if (t.relaySecret) s.write(relayPreamble(t.relaySecret));
  return s;
}

/** Whether a target needs connections made by `connectTarget` rather than a plain agent. */
export function needsOwnConnections(t: RouteTarget): boolean {
  return (!!t.socketPath && !!t.owner) || (!t.socketPath && !!t.relaySecret);
}

const agents = new WeakMap<RouteTarget, http.Agent>();

/**
 * A keep-alive agent whose connections go through `connectTarget`, one per route target (it goes away
 * with the route); undefined when plain connections do.
 */
export function agentFor(t: RouteTarget): http.Agent | undefined {
  if (!needsOwnConnections(t)) return undefined;
  let a = agents.get(t);
  if (!a) {
    // Pooled like the proxy's main agent (src/proxy/proxy.ts): an app keeps as many idle connections
    // as it had concurrent requests, since each new one costs a user switch or a relay preamble.
    a = new http.Agent({
      keepAlive: true,
      maxSockets: 256,
      maxFreeSockets: 256,
      timeout: 60_000,
      scheduling: 'lifo',
    });
    (a as unknown as { createConnection: () => net.Socket }).createConnection = () => connectTarget(t);
    agents.set(t, a);
  }
  return a;
}
