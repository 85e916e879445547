// An app is what runs in a session (Jupyter, VS Code, a desktop...). Apps are declared, not coded:
// adding one to the catalogue needs no code change.

export interface AppReadiness {
  /** HTTP path (placeholders allowed) that answers 2xx/3xx when the app is ready. */
  http?: string;
  /** The app speaks RFB (VNC): ready when the greeting arrives. */
  rfb?: boolean;
  /** Ready when the port accepts connections. */
  tcp?: boolean;
  timeoutSeconds: number;
}

export interface AppDefinition {
  id: string;
  name: string;
  description: string;
  /** Name of an icon shipped with the UI, or a data: URL. */
  icon?: string;
  /**
   * argv of the app. Placeholders: {port} {bind_host} {base_url} {home} {session_dir} {socket} {user}
   * {share} {tmp} {node} {dist} ({share} is Atrium's share/ directory on the node, {dist} its dist/
   * directory, {node} the Node.js running the agent, {tmp} the app's own TMPDIR).
   * Never {token}: secrets go through `env`, so they do not show in `ps`.
   */
  command: string[];
  /** Environment of the app; {token} is allowed here. */
  env?: Record<string, string>;
  /** keep: the app gets the full /user/<name>/<session>/ path (it has a base-url option); strip: it gets "/". */
  prefix: 'keep' | 'strip';
  ready: AppReadiness;
  /** Headers the gateway adds upstream, e.g. {Authorization: "token {token}"}; the browser never sees them. */
  upstreamHeaders?: Record<string, string>;
  /** How the gateway reaches it: plain HTTP (default), or raw RFB bridged from a WebSocket. */
  transport?: 'http' | 'rfb';
  /** Listen on a Unix socket in the session dir instead of a TCP port ({socket} in command). */
  unixSocket?: boolean;
  stop?: { signal?: 'SIGTERM' | 'SIGINT' | 'SIGHUP'; graceSeconds?: number };
  /**
   * Executables that must exist for the app to be offered; the form says what is missing. An entry is
   * an absolute path or a command name looked up on the sessions' PATH; "a|b" means either.
   */
  requires?: string[];
  /** Clusters that offer it; all when absent. */
  clusters?: string[];
  /** Page to open after start, relative to the session root (e.g. "tree" for Jupyter). */
  openPath?: string;
  /** false: the app cannot be added to another app's session as an extra app. Default true. */
  extra?: boolean;
  /** Removes a built-in app of the same id from the catalogue. */
  disabled?: boolean;
}

/** What the agent receives (JSON in ATRIUM_APP): the definition with the fields the agent needs. */
export interface AgentAppSpec {
  id: string;
  command: string[];
  env: Record<string, string>;
  ready: AppReadiness;
  prefix: 'keep' | 'strip';
  transport: 'http' | 'rfb';
  unixSocket: boolean;
  stopSignal: 'SIGTERM' | 'SIGINT' | 'SIGHUP';
  graceSeconds: number;
  /** Checked again on the node before starting: a clear "not installed" beats an exit code. */
  requires?: string[];
}

export function agentSpecOf(app: AppDefinition): AgentAppSpec {
  return {
    id: app.id,
    command: app.command,
    env: app.env ?? {},
    ready: app.ready,
    prefix: app.prefix,
    transport: app.transport ?? 'http',
    unixSocket: app.unixSocket ?? false,
    stopSignal: app.stop?.signal ?? 'SIGTERM',
    graceSeconds: app.stop?.graceSeconds ?? 5,
    requires: app.requires,
  };
}

/** Container an environment runs its apps in (the app's argv is appended after the image). */
export interface ContainerSpec {
  runtime: string;
  image: string;
  args: string[];
}

/** argv of an app run in a container: `<runtime> exec <args...> <image> <argv...>`. */
export function containerArgv(c: ContainerSpec | undefined, argv: string[]): string[] {
  if (!c) return argv;
  return [c.runtime, 'exec', ...c.args, c.image, ...argv];
}

/**
 * Address of an extra app of a session: /user/<name>/<session>.<app>/ next to the session's
 * /user/<name>/<session>/. A dot never occurs in session ids, so the two cannot collide.
 */
export function extraAppBase(sessionBase: string, appId: string): string {
  return `${sessionBase.replace(/\/+$/, '')}.${appId}/`;
}

/** File name of an app's Unix socket in the session dir: the main app's is app.sock. */
export function socketName(appId: string, main: boolean): string {
  return main ? 'app.sock' : `app-${appId}.sock`;
}
