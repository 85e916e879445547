// Source-network rules at the gateway's doors (src/core/networks.ts holds the matching): which address a
// request comes from (X-Forwarded-For only from a trusted proxy), whether the site lets it in, whether a
// cluster does, and the 403 that says so. Checked by the auth hook on every route whose policy does not
// exempt it (src/server/route-policy.ts), by the proxy on /user/... requests and WebSocket upgrades, and
// by the gateway on the other upgrades, each on the one spelling of the path (src/server/paths.ts).
import type http from 'node:http';
import type net from 'node:net';
import type { LoadedConfig } from '../config/load.ts';
import {
  clientAddress,
  compileNetworks,
  displayAddress,
  inNetworks,
  type Network,
} from '../core/networks.ts';
import { sendPage } from '../proxy/proxy.ts';

interface Rule {
  networks: Network[];
  message: string;
}

export class SourceNetworks {
  private readonly site: Rule | null;
  private readonly clusters = new Map<string, Rule>();
  private readonly proxies: Network[] | boolean;

  /** The lists were checked when the config was loaded (src/config/load.ts): compiling cannot fail here. */
  constructor(cfg: Pick<LoadedConfig, 'server' | 'sourceNetworks' | 'clusters'>) {
    const message = cfg.sourceNetworks.message;
    this.site =
      cfg.sourceNetworks.allow.length > 0
        ? { networks: compileNetworks(cfg.sourceNetworks.allow), message }
        : null;
    for (const c of cfg.clusters) {
      const r = c.sourceNetworks;
      if (r) this.clusters.set(c.name, { networks: compileNetworks(r.allow), message: r.message ?? message });
    }
    const t = cfg.server.trustProxy;
    this.proxies = Array.isArray(t) ? compileNetworks(t) : t;
  }

  /** Whether X-Forwarded-* from this peer is believed. */
  trusts(peer: string): boolean {
    return typeof this.proxies === 'boolean' ? this.proxies : inNetworks(peer, this.proxies);
  }

  /** fastify's `trustProxy`: the same walk, so `req.ip` is the address the rules see. */
  get fastifyTrust(): boolean | ((address: string) => boolean) {
    return typeof this.proxies === 'boolean' ? this.proxies : (a: string) => this.trusts(a);
  }

  /** The client address of a request fastify does not see (the proxy's, upgrades). */
  clientOf(req: http.IncomingMessage): string {
    const peer = req.socket.remoteAddress ?? '';
    if (!this.trusts(peer)) return peer;
    const xff = req.headers['x-forwarded-for'];
    return clientAddress(peer, Array.isArray(xff) ? xff.join(',') : xff, (a) => this.trusts(a));
  }

  /** Why the site refuses this address, or null when it lets it in. */
  refusal(address: string): string | null {
    if (!this.site || inNetworks(address, this.site.networks)) return null;
    return `Your address ${displayAddress(address)} is not in the networks this service is open to. ${this.site.message}`;
  }

  /** Why a cluster refuses this address (starting sessions and jobs there, reaching its sessions), or null. */
  clusterRefusal(cluster: string, address: string, title = cluster): string | null {
    const r = this.clusters.get(cluster);
    if (!r || inNetworks(address, r.networks)) return null;
    return `The cluster "${title}" is not open to your address ${displayAddress(address)}. ${r.message}`;
  }
}

/** A browser navigating to a page (it gets a page; scripts and the API get JSON). */
export function wantsPage(req: http.IncomingMessage): boolean {
  return req.method === 'GET' && (req.headers.accept ?? '').includes('text/html');
}

/** The refusal as a page for browsers asking for one, else as the API's JSON error. */
export function sendRefusal(req: http.IncomingMessage, res: http.ServerResponse, message: string): void {
  if (wantsPage(req)) {
    sendPage(res, 403, 'Not open to your network', message);
    return;
  }
  const body = JSON.stringify({ error: message });
  res.writeHead(403, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(body);
}

/** The refusal of a WebSocket upgrade: a plain 403 with the message as its JSON body. */
export function refuseUpgrade(socket: net.Socket, message: string): void {
  const body = JSON.stringify({ error: message });
  if (!socket.writable) return void socket.destroy();
  socket.end(
    `HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}
