// Connections from the gateway to apps, for the two cases plain host:port does not cover:
//
// - A Unix socket in the user's session dir. The gateway usually runs as root, and the user owns that
//   directory: a symlink planted there could point root's connect() at any socket on the host (a
//   container runtime's, systemd's...). So the connect() runs with the user's credentials: the kernel
//   then allows exactly the sockets the user could open anyway. Unix-socket connect() is synchronous in
//   libuv, so the switch lasts only for that one system call on this thread.
// - The agent's relay on a remote node (TCP): every new connection starts with a mutual proof of the
//   app's relay secret (src/apps/relay-protocol.ts), the relay's first: nothing of the user's is sent to
//   a port that another user took over after the agent died.
import http from 'node:http';
import net from 'node:net';
import {
  CHALLENGE_LEN,
  HANDSHAKE_TIMEOUT_MS,
  isNonce,
  macMatches,
  newNonce,
  PROOF_LEN,
  RELAY_HELLO,
  relayMac,
} from '../apps/relay-protocol.ts';
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

export class RelayRefused extends Error {
  readonly code = 'ERELAYREFUSED';
}

/**
 * The gateway's side of the relay handshake (src/apps/relay-protocol.ts) on a new connection: `done`
 * is called once the relay has proved it knows the secret and our own proof is written, with the
 * socket's listeners as they were (nothing read past the relay's answer). Until then nothing but the
 * opening line is sent: a peer without the secret (someone who bound a dead agent's port) gets no
 * secret, no proof and none of the user's bytes; the socket is destroyed and `done` gets the error.
 */
export function relayHandshake(
  s: net.Socket,
  secret: string,
  done: (err: Error | null) => void,
  timeoutMs = HANDSHAKE_TIMEOUT_MS,
): void {
  const nonceG = newNonce();
  let buf: Buffer = Buffer.alloc(0);
  let over = false;
  const finish = (err: Error | null) => {
    if (over) return;
    over = true;
    clearTimeout(timer);
    s.off('readable', onReadable);
    s.off('error', finish);
    s.off('close', onClose);
    s.off('end', onEnd);
    if (err) s.destroy();
    done(err);
  };
  const fail = (why: string) => finish(new RelayRefused(`relay handshake: ${why}`));
  const onClose = () => fail('the connection closed');
  const onEnd = () => fail('the peer ended the connection');
  const onReadable = () => {
    for (let d = s.read() as Buffer | null; d !== null; d = s.read() as Buffer | null) {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      // The relay says nothing more before our proof.
      if (buf.length > CHALLENGE_LEN) return fail('the peer sent more than the protocol allows');
    }
    const nl = buf.indexOf(10);
    if (nl !== -1 && nl !== CHALLENGE_LEN - 1) return fail('malformed answer');
    if (buf.length < CHALLENGE_LEN) return;
    const nonceR = buf.toString('latin1', 0, CHALLENGE_LEN - PROOF_LEN - 1);
    const mac = buf.subarray(CHALLENGE_LEN - PROOF_LEN, CHALLENGE_LEN - 1);
    if (!isNonce(nonceR) || buf[nonceR.length] !== 32) return fail('malformed answer');
    if (!macMatches(mac, relayMac(secret, 'relay', nonceG, nonceR)))
      return fail('the peer does not know the secret');
    s.off('readable', onReadable);
    // Handed over once the proof is written, so that no write error can come before the user's listeners.
    s.write(`${relayMac(secret, 'gateway', nonceR, nonceG)}\n`, (err) => finish(err ?? null));
  };
  const timer = setTimeout(() => fail('no answer in time'), timeoutMs);
  s.on('readable', onReadable);
  s.on('error', finish);
  s.on('close', onClose);
  s.on('end', onEnd);
  s.write(`${RELAY_HELLO}${nonceG}\n`);
}

/**
 * A connection to a route's app, given to `cb` when it may carry the user's bytes: at once for a plain
 * or Unix-socket target (still connecting: writes are queued), after the handshake for a relay.
 */
export function connectTarget(t: RouteTarget, cb: (err: Error | null, s?: net.Socket) => void): void {
  if (t.tunnel) return t.tunnel.hub.connect(t.tunnel.sessionId, t.tunnel.app, cb);
  let s: net.Socket;
  try {
    // No Nagle on TCP (as http's own agent): the proof and the first request are two small writes.
    s = t.socketPath
      ? connectUnixAs(t.socketPath, t.owner)
      : net.connect({ port: t.port, host: t.host, noDelay: true });
  } catch (e) {
    // e.g. the switch to the user's identity failed
    cb(e as Error);
    return;
  }
  if (t.socketPath || !t.relaySecret) cb(null, s);
  else relayHandshake(s, t.relaySecret, (err) => (err ? cb(err) : cb(null, s)));
}

/**
 * Closes the idle pooled connections to a target, e.g. when its agent stops answering: a request would
 * otherwise wait on a connection to a relay that no longer forwards anything, instead of failing the
 * handshake of a new one within HANDSHAKE_TIMEOUT_MS and showing the error page.
 */
export function dropIdleConnections(t: RouteTarget): void {
  const a = agents.get(t);
  if (!a) return;
  for (const list of Object.values(a.freeSockets)) for (const s of list ?? []) s.destroy();
}

/** Whether a target needs connections made by `connectTarget` rather than a plain agent. */
export function needsOwnConnections(t: RouteTarget): boolean {
  return (!!t.socketPath && !!t.owner) || (!t.socketPath && !!t.relaySecret) || !!t.tunnel;
}

type CreateConnection = (
  opts: unknown,
  cb: (err: Error | null, s?: net.Socket) => void,
) => net.Socket | undefined;

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
    // as it had concurrent requests, since each new one costs a user switch or a relay handshake (a
    // round trip). Connections still in their handshake are not counted against maxSockets by Node's
    // agent: a burst within one round trip may open more, the surplus closed once idle (above 256).
    a = new http.Agent({
      keepAlive: true,
      maxSockets: 256,
      maxFreeSockets: 256,
      timeout: 60_000,
      scheduling: 'lifo',
    });
    // The callback form of createConnection: the agent hands the socket to a request only when
    // connectTarget does (after the relay handshake).
    (a as unknown as { createConnection: CreateConnection }).createConnection = (_opts, cb) => {
      connectTarget(t, cb);
      return undefined;
    };
    agents.set(t, a);
  }
  return a;
}
