// The one configuration file, as a JSON schema (typebox). Defaults live here, so an empty file is a
// working embedded setup: SQLite, the local backend, local accounts.
import Type, { type Static, type TSchema } from 'typebox';

/**
 * The schema with a description for the configuration reference (docs/configuration.md is generated
 * from these). A copy, so shared pieces (`Name`) keep no description of one key, and property
 * descriptors are kept, so `Type.Optional` stays optional.
 */
function doc<T extends TSchema>(description: string, schema: T): T {
  const copy = Object.create(Object.getPrototypeOf(schema)) as T;
  Object.defineProperties(copy, Object.getOwnPropertyDescriptors(schema));
  Object.defineProperty(copy, 'description', {
    value: description,
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return copy;
}

const Name = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' });

const AppReadiness = Type.Object(
  {
    http: doc(
      "Ready when an HTTP GET of this path (under the session's base URL) answers below 500.",
      Type.Optional(Type.String()),
    ),
    rfb: doc("Ready when the port speaks VNC's RFB protocol (desktops).", Type.Optional(Type.Boolean())),
    tcp: doc('Ready when the port accepts a TCP connection.', Type.Optional(Type.Boolean())),
    timeoutSeconds: doc(
      'How long the agent waits for the app to be ready before the session fails; 120 when absent (applied after merging with a built-in app).',
      Type.Optional(Type.Number({ minimum: 1 })),
    ),
  },
  { additionalProperties: false },
);

/**
 * One catalogue entry (inline `apps:` or the `appsFile:`). An entry whose id is a built-in app's is
 * merged onto it (only the keys given change; `disabled: true` removes it); a new id needs name,
 * command and ready. No schema defaults here, so a partial entry cannot reset a built-in's values:
 * src/apps/catalogue.ts applies the defaults after merging.
 */
export const AppSchema = Type.Object(
  {
    id: doc(
      "The app's id: a built-in app's id (jupyter, vscode, desktop, terminal, shiny) changes that app; a new one adds an app.",
      Name,
    ),
    name: doc('Shown on the form and the session card.', Type.Optional(Type.String({ minLength: 1 }))),
    description: doc('One line on the form.', Type.Optional(Type.String())),
    icon: doc('Path or URL of an icon shown on the form.', Type.Optional(Type.String())),
    command: doc(
      'argv of the app (no shell); placeholders `{port}`, `{socket}`, `{base_url}`, `{token}`, `{session_dir}` are filled in by the agent.',
      Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
    ),
    env: doc(
      'Environment variables for the app (placeholders as in `command`).',
      Type.Optional(Type.Record(Type.String(), Type.String())),
    ),
    prefix: doc(
      "`keep`: the app is told its base URL and gets full paths; `strip`: the gateway removes the session's prefix before passing requests on.",
      Type.Optional(Type.Union([Type.Literal('keep'), Type.Literal('strip')])),
    ),
    ready: doc(
      'How the agent tells that the app answers (one of `http`, `rfb`, `tcp`).',
      Type.Optional(AppReadiness),
    ),
    upstreamHeaders: doc(
      'Headers the gateway adds to every request it passes to the app (placeholders as in `command`).',
      Type.Optional(Type.Record(Type.String(), Type.String())),
    ),
    transport: doc(
      '`http` (HTTP and WebSocket), or `rfb` (a VNC server the gateway bridges to noVNC over a WebSocket).',
      Type.Optional(Type.Union([Type.Literal('http'), Type.Literal('rfb')])),
    ),
    unixSocket: doc(
      'The app listens on a Unix socket (`{socket}`) instead of a TCP port: nobody else on the node can reach it.',
      Type.Optional(Type.Boolean()),
    ),
    stop: doc(
      "How the agent stops the app at the session's end.",
      Type.Optional(
        Type.Object(
          {
            signal: doc(
              'Signal sent to the app first (default SIGTERM).',
              Type.Optional(
                Type.Union([Type.Literal('SIGTERM'), Type.Literal('SIGINT'), Type.Literal('SIGHUP')]),
              ),
            ),
            graceSeconds: doc(
              'Seconds before SIGKILL follows (default 5).',
              Type.Optional(Type.Number({ minimum: 0 })),
            ),
          },
          { additionalProperties: false },
        ),
      ),
    ),
    requires: doc(
      'Commands that must be installed for the app to be offered (checked where `checkInstalled` holds).',
      Type.Optional(Type.Array(Type.String())),
    ),
    clusters: doc('Offered only on these clusters (all when absent).', Type.Optional(Type.Array(Name))),
    openPath: doc(
      "Path under the session's URL that Connect opens (e.g. `/lab` or `/vnc.html`).",
      Type.Optional(Type.String()),
    ),
    extra: doc(
      'false: not offered as an extra app next to another app in one session.',
      Type.Optional(Type.Boolean()),
    ),
    disabled: doc('true: removes the built-in app of this id.', Type.Optional(Type.Boolean())),
  },
  { additionalProperties: false },
);

export const EnvironmentSchema = Type.Object(
  {
    id: doc("The environment's id (letters, digits, `._-`).", Name),
    name: doc('Shown on the form.', Type.String({ minLength: 1 })),
    description: doc('One line on the form.', Type.String({ default: '' })),
    setup: doc(
      "Shell lines run in the session before the app starts (`module load pytorch`, `source /opt/envs/torch/bin/activate`); a failing line fails the session with that line's error.",
      Type.Array(Type.String(), { default: [] }),
    ),
    container: doc(
      'Run every app of the session in this container image (after the setup lines).',
      Type.Optional(
        Type.Object(
          {
            image: doc(
              'The image (a path or a registry reference the runtime understands).',
              Type.String({ minLength: 1 }),
            ),
            runtime: doc(
              'apptainer, singularity, or another runtime with `<runtime> exec <args> <image> <argv>`.',
              Type.String({ minLength: 1, default: 'apptainer' }),
            ),
            args: doc(
              'Arguments before the image, e.g. `["--nv", "--bind", "/opt/atrium"]`; placeholders as in app commands.',
              Type.Array(Type.String(), { default: [] }),
            ),
          },
          { additionalProperties: false },
        ),
      ),
    ),
    clusters: doc('Offered only on these clusters (all when absent).', Type.Optional(Type.Array(Name))),
  },
  { additionalProperties: false },
);

const Limits = Type.Object(
  {
    maxCores: doc(
      'Most cores one session may ask for (default: the machine for `local`, the largest node for Slurm).',
      Type.Optional(Type.Integer({ minimum: 1 })),
    ),
    maxMemoryGb: doc(
      'Most memory one session may ask for, in GB (default as for cores).',
      Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    ),
    maxGpus: doc(
      'Most GPUs one session may ask for (default as for cores).',
      Type.Optional(Type.Integer({ minimum: 0 })),
    ),
  },
  { additionalProperties: false },
);

const PartitionRule = Type.Object(
  {
    partition: doc('The partition chosen when the rule matches.', Name),
    minGpus: doc(
      'Matches requests of at least this many GPUs. The rule matches when every given condition holds.',
      Type.Optional(Type.Integer({ minimum: 0 })),
    ),
    maxCores: doc(
      'Matches requests of at most this many cores.',
      Type.Optional(Type.Integer({ minimum: 1 })),
    ),
    maxHours: doc(
      'Matches requests of at most this many hours.',
      Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    ),
  },
  { additionalProperties: false },
);

const SlurmSettings = Type.Object(
  {
    conf: doc(
      "Path of slurm.conf (sets SLURM_CONF for every command); Slurm's default when absent.",
      Type.Optional(Type.String()),
    ),
    binDir: doc('Directory of the Slurm commands; PATH when absent.', Type.Optional(Type.String())),
    runAs: doc(
      "How commands run as the user: `runuser` (the gateway runs as root), `sudo` (a service user with sudo rules, see [slurm.md](slurm.md)), `none` (every command as the gateway's user: single-user test setups).",
      Type.Union([Type.Literal('runuser'), Type.Literal('sudo'), Type.Literal('none')], {
        default: 'sudo',
      }),
    ),
    loginEnvironment: doc(
      "Where a session's login environment comes from. `shell`: the session's batch script is a bash login shell on the node (/etc/profile, then ~/.bash_profile, ~/.bash_login or ~/.profile), submitted with --export=ALL from an environment holding only the identity (HOME, USER, LOGNAME, SHELL), PATH and SLURM_CONF. `slurm`: --export=NONE, slurmd loads it with the user's own login shell (for users whose login shell is csh or zsh), which Slurm 22.05 waits for in whole seconds: up to 1 s more on a session's start.",
      Type.Union([Type.Literal('shell'), Type.Literal('slurm')], { default: 'shell' }),
    ),
    pollSeconds: doc(
      'Seconds between polls (one squeue and one sinfo for the whole cluster, whatever the number of users).',
      Type.Number({ minimum: 1, default: 10 }),
    ),
    commandTimeoutSeconds: doc(
      'A Slurm command that takes longer is killed and its call fails (the poll then reports the cluster unreachable).',
      Type.Number({ minimum: 1, default: 30 }),
    ),
    partition: doc(
      'Partition for sessions when no rule matches and the user picks none.',
      Type.Optional(Name),
    ),
    partitions: doc('Partitions offered on the form (all when absent).', Type.Optional(Type.Array(Name))),
    partitionRules: doc(
      'Automatic partition choice on the requested resources (first match wins).',
      Type.Optional(Type.Array(PartitionRule)),
    ),
    accounts: doc(
      'Accounts offered when the cluster has no accounting database.',
      Type.Optional(Type.Array(Name)),
    ),
    nodelist: doc(
      "Run this cluster's sessions on these nodes only (a Slurm hostlist such as `node[1-4]`, passed as --nodelist; the form's limits and free table then count these nodes only). Lets one Slurm cluster appear as several gateway clusters, e.g. a set of interactive nodes.",
      Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.,\\[\\]-]{0,1023}$' })),
    ),
    batchPartitions: doc(
      'Partitions offered for batch jobs ([jobs.md](jobs.md)).',
      Type.Optional(Type.Array(Name)),
    ),
    mail: doc(
      "The site delivers Slurm's job mail (MailProg works): users may ask for e-mail via --mail-type.",
      Type.Boolean({ default: false }),
    ),
  },
  { additionalProperties: false },
);

const SshSettings = Type.Object(
  {
    host: doc('The host sessions run on.', Type.String({ minLength: 1 })),
    port: doc('Its ssh port.', Type.Integer({ minimum: 1, maximum: 65535, default: 22 })),
    keyFile: doc(
      "Private key the gateway uses (`{user}`: the user's name, for one key per user); the remote account is the user's own.",
      Type.Optional(Type.String()),
    ),
    address: doc(
      'Address the gateway uses to reach apps on that host (default: `host`).',
      Type.Optional(Type.String()),
    ),
    knownHostsFile: doc(
      "known_hosts file holding the host's key (host keys are always checked).",
      Type.Optional(Type.String()),
    ),
    sshCommand: doc('ssh client binary (OpenSSH).', Type.String({ default: '/usr/bin/ssh' })),
    pollUser: doc(
      "Account the poll logs in as (`ps` lists every user's agents); the gateway's own user when absent.",
      Type.Optional(Type.String({ pattern: '^[a-z_][a-z0-9_.-]{0,31}$' })),
    ),
    pollSeconds: doc(
      'Seconds between polls (one `ps` over ssh for every session).',
      Type.Number({ minimum: 1, default: 10 }),
    ),
    commandTimeoutSeconds: doc(
      'An ssh command that takes longer is killed and its call fails.',
      Type.Number({ minimum: 1, default: 30 }),
    ),
  },
  { additionalProperties: false },
);

const NetworkList = Type.Array(Type.String(), {
  description:
    'IPv4 or IPv6 addresses and networks (CIDR: `10.0.0.0/8`, `2001:db8::/32`); an IPv4-mapped IPv6 client address (`::ffff:10.1.2.3`) counts as its IPv4 address.',
});

const SourceNetworksSchema = Type.Object(
  {
    allow: doc(
      'Client addresses and networks (CIDR, IPv4 and IPv6) allowed in; empty: every address. A refused request gets HTTP 403 naming the address seen and `message`. Agents, `/api/health` and `/metrics` (see `metrics.allowFrom`) are not subject to it.',
      Type.Array(Type.String(), { default: [] }),
    ),
    message: doc(
      "The site's words in the refusal, after the address (e.g. whom to ask, or which VPN to use).",
      Type.String({ default: 'Atrium is open only to the networks of the site.' }),
    ),
  },
  { additionalProperties: false, default: {} },
);

const ClusterSourceNetworks = Type.Object(
  {
    allow: doc(
      "Client addresses and networks (CIDR) that may start sessions and jobs here and reach this cluster's sessions through the proxy; an address refused here can still use the other clusters.",
      NetworkList,
    ),
    message: doc(
      "The site's words in this cluster's refusal (default: `sourceNetworks.message`).",
      Type.Optional(Type.String()),
    ),
  },
  { additionalProperties: false },
);

const ExtensionLimits = {
  maxTotalMinutes: Type.Integer({
    minimum: 1,
    maximum: 525_600,
    description:
      'Longest total time limit a session or job may reach by extensions, in minutes (its first limit included).',
  }),
  maxPerRequestMinutes: Type.Integer({
    minimum: 1,
    maximum: 525_600,
    description: 'Most one request may add, in minutes.',
  }),
};

const ExtensionPartition = Type.Object(
  {
    enabled: doc('false: no extensions in this partition.', Type.Optional(Type.Boolean({ default: true }))),
    maxTotalMinutes: doc(
      "This partition's `maxTotalMinutes` (default: the cluster's).",
      Type.Optional(ExtensionLimits.maxTotalMinutes),
    ),
    maxPerRequestMinutes: doc(
      "This partition's `maxPerRequestMinutes` (default: the cluster's).",
      Type.Optional(ExtensionLimits.maxPerRequestMinutes),
    ),
  },
  { additionalProperties: false },
);

const ExtensionSettings = Type.Object(
  {
    maxTotalMinutes: { ...ExtensionLimits.maxTotalMinutes, default: 1440 },
    maxPerRequestMinutes: { ...ExtensionLimits.maxPerRequestMinutes, default: 120 },
    partitions: doc(
      "Per partition, by name: `{ enabled, maxTotalMinutes, maxPerRequestMinutes }` (same ranges; each defaults to the cluster's, `enabled` to true), e.g. `{ debug: { enabled: false }, long: { maxTotalMinutes: 4320 } }`. Partitions not named take the limits above.",
      Type.Record(Type.String(), ExtensionPartition, { default: {} }),
    ),
  },
  { additionalProperties: false },
);

const ProjectAccessSchema = Type.Object(
  {
    projects: doc(
      "Only associations with these accounts (projects) count, and a session or job that names no account is charged to the user's first qualifying one (`--account`); absent: an active association with any account, and Slurm's default account.",
      Type.Optional(Type.Array(Name, { minItems: 1 })),
    ),
    message: doc(
      "The site's words after the refusal, on the form and in the API: where to ask for a project (e.g. a portal's address).",
      Type.String({ minLength: 1 }),
    ),
    refreshSeconds: doc(
      "How often the gateway reads every user's associations (one `sacctmgr show assoc` for the whole cluster, in the background); a change in Slurm takes effect within this time.",
      Type.Integer({ minimum: 1, maximum: 86400, default: 300 }),
    ),
  },
  { additionalProperties: false },
);

export const ClusterSchema = Type.Object(
  {
    name: doc('Short name (letters, digits, `._-`), used in URLs, the API and the CLI.', Name),
    title: doc('Shown in the UI (default: `name`).', Type.Optional(Type.String())),
    backend: Type.String({
      pattern: '^[a-z][a-z0-9_-]{0,31}$',
      description:
        'The scheduler backend, by its registered name: `local` (processes on this host), `slurm`, `ssh` (processes on one host reached by ssh), or one a site registers (src/scheduler/registry.ts).',
    }),
    limits: doc('Caps on what one session may ask for here.', Type.Optional(Limits)),
    maxHours: doc(
      'Longest session, in hours (Slurm sites often allow 8 to 36).',
      Type.Number({ exclusiveMinimum: 0, default: 8 }),
    ),
    defaultHours: doc(
      'Hours preset on the form; at most `maxHours`.',
      Type.Number({ exclusiveMinimum: 0, default: 2 }),
    ),
    bindHost: doc(
      "Address the gateway reaches the node on: the agent's relay listens there (with `appSockets: relay`, where apps on TCP ports listen on loopback behind it), else the apps. Use `0.0.0.0` (or the node's address) when the gateway is on another host.",
      Type.String({ default: '127.0.0.1' }),
    ),
    allowGroups: doc(
      "Only these groups may use the cluster (the groups from the sign-in provider, and the Unix groups of the user's account); others are not offered it and get a `cluster` error. Empty: every signed-in user.",
      Type.Array(Type.String(), { default: [] }),
    ),
    projectAccess: doc(
      'Access only for members of an active project: a user may start sessions and jobs here only with an active Slurm association on this cluster (removed ones, and those whose job limits are 0, count as none); the form offers only those accounts. Running sessions are not touched. Needs `backend: slurm` with accounting (slurmdbd); see [admin.md](admin.md#access-only-for-members-of-an-active-project).',
      Type.Optional(ProjectAccessSchema),
    ),
    sourceNetworks: doc(
      'Narrows the global `sourceNetworks` for this cluster (both must allow an address); see [security.md](security.md#source-networks).',
      Type.Optional(ClusterSourceNetworks),
    ),
    drained: doc(
      'Closed for new sessions (running ones continue). Administrators switch it at run time (admin page, `atrium admin drain`), see [admin.md](admin.md).',
      Type.Boolean({ default: false }),
    ),
    appSockets: doc(
      'How the gateway reaches apps that listen on a Unix socket: `unix` connects to the socket (the nodes are this host: local backend, single-host test clusters); `relay` has the agent accept TCP on the node with a per-session secret and pass it on. Default: unix where the backend runs sessions on this host, else relay.',
      Type.Optional(Type.Union([Type.Literal('unix'), Type.Literal('relay')])),
    ),
    connection: doc(
      "How the gateway reaches the apps of sessions here: `inbound` connects to the node (its Unix socket, or the agent's relay: see `appSockets`); `dial-out` is for nodes that accept no inbound connection: the agent dials the gateway's own HTTP(S) port (`server.publicUrl`), opens one WebSocket authenticated both ways with the session's secret, and the gateway carries every app's HTTP and WebSocket traffic through it; the session listens on no TCP port. See [slurm.md](slurm.md#nodes-that-accept-no-inbound-connection).",
      Type.Union([Type.Literal('inbound'), Type.Literal('dial-out')], { default: 'inbound' }),
    ),
    checkInstalled: doc(
      "Check apps' `requires` on this host (the nodes have the same software). Default: where the backend runs sessions on this host.",
      Type.Optional(Type.Boolean()),
    ),
    extension: doc(
      'Walltime extension: running sessions and jobs offer "add time" within these limits, and never past a maintenance window or another reservation that starts on the job\'s nodes. The gateway sets the new limit itself (`scontrol update`), so it must be a Slurm operator. Absent: no extensions. See [slurm.md](slurm.md#adding-time).',
      Type.Optional(ExtensionSettings),
    ),
    slurm: doc(
      'Slurm settings (required for `backend: slurm`); see [slurm.md](slurm.md).',
      Type.Optional(SlurmSettings),
    ),
    ssh: doc(
      'ssh backend settings (required for `backend: ssh`); see [ssh.md](ssh.md).',
      Type.Optional(SshSettings),
    ),
    filesHere: Type.Optional(
      Type.Boolean({
        description:
          "The cluster's nodes see the gateway host's file systems at the same paths (home, project, scratch), so the Files page's folders are the cluster's: offered for \"open a terminal here\" and \"submit as a batch job\". Default: true, except for the `ssh` backend; where false, the Files page says that this cluster's files are not shown.",
      }),
    ),
  },
  { additionalProperties: false },
);

const FileRootSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64, description: 'What the Files page calls the folder.' }),
    path: Type.String({
      minLength: 1,
      description:
        "Absolute path; `~` (or `$HOME`) is the user's home directory and `$USER` their Unix user name, e.g. `/project/$USER` or `/scratch/$USER`.",
    }),
  },
  { additionalProperties: false },
);

const FilesSchema = Type.Object(
  {
    enabled: Type.Boolean({
      default: true,
      description: 'Show the Files page (a file manager over `files.roots`, working as the signed-in user).',
    }),
    roots: Type.Array(FileRootSchema, {
      default: [{ name: 'Home', path: '~' }],
      minItems: 1,
      description:
        "The folders the Files page shows. Nothing outside them can be reached (not through a symbolic link, `..`, an encoded path or a race); inside, the user's own Unix permissions decide. A root that does not exist for a user is listed as missing.",
    }),
    maxUploadMb: Type.Number({
      exclusiveMinimum: 0,
      default: 1024,
      description:
        'Largest file one upload may bring, in MiB (fractions allowed). A larger upload is refused from its declared size, before anything is written.',
    }),
    maxEditKb: Type.Number({
      exclusiveMinimum: 0,
      default: 2048,
      description: 'Largest text file the page opens in its editor, in KiB; larger ones can be downloaded.',
    }),
    runAs: Type.Union(
      [Type.Literal('auto'), Type.Literal('setpriv'), Type.Literal('sudo'), Type.Literal('none')],
      {
        default: 'auto',
        description:
          "How file operations run as the user: `setpriv` (a root gateway; the local backend's way, with supplementary groups), `sudo` (a service user with a sudo rule to run `agent.node` as the users), `none` (a gateway that runs as the one user of every account). `auto`: setpriv as root, else none for the gateway's own user and sudo for others.",
      },
    ),
    timeoutSeconds: Type.Number({
      exclusiveMinimum: 0,
      default: 60,
      description:
        'Longest time a listing, rename, move, delete or folder creation may take (uploads and downloads run as long as their transfer).',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description:
      'The Files page: browse, upload, download and edit files as the signed-in user ([files.md](files.md)).',
  },
);

const IdleRuleSchema = Type.Object(
  {
    cluster: Type.Optional(Type.String({ description: 'Matches sessions on this cluster.' })),
    partition: Type.Optional(
      Type.String({
        description: "Matches sessions in this partition (the one asked for, else the cluster's default).",
      }),
    ),
    app: Type.Optional(
      Type.String({ description: 'Matches sessions whose main app has this id (e.g. `desktop`).' }),
    ),
    minutes: Type.Number({
      minimum: 0,
      description: 'Idle minutes after which matching sessions are stopped; 0: never.',
    }),
  },
  { additionalProperties: false },
);

const IdleSignal = Type.Union([
  Type.Literal('jupyter'),
  Type.Literal('terminal'),
  Type.Literal('vnc'),
  Type.Literal('traffic'),
  Type.Literal('none'),
]);

const StorageQuotaCommand = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'What the page calls it, e.g. `Home` or `Scratch`.',
    }),
    command: Type.Array(Type.String(), {
      minItems: 1,
      description:
        "argv of the command (no shell), run as the user the way file operations are (`files.runAs`); `{user}`, `{uid}` and `{home}` are replaced by the user's Unix name, uid and home, e.g. `[quota, -w]` or `[lfs, quota, -u, '{user}', /lustre]`.",
    }),
    parser: Type.String({
      pattern: '^[a-z][a-z0-9_-]{0,31}$',
      description:
        "Which parser reads its output: `quota-w` (quota-tools' `quota -w`, with or without `-s`), `lfs-quota` (Lustre's `lfs quota -u`, with or without `-h`), or one a site registers ([admin.md](admin.md#usage-and-quotas)).",
    }),
    timeoutSeconds: Type.Number({
      exclusiveMinimum: 0,
      maximum: 600,
      default: 10,
      description: 'A command still running after this is killed; the page then says "quota unavailable".',
    }),
  },
  { additionalProperties: false },
);

const UsageSchema = Type.Object(
  {
    refreshSeconds: Type.Number({
      minimum: 1,
      maximum: 86400,
      default: 300,
      description:
        "How often each Slurm cluster's usage, limits and fair shares are read: one `sshare` per cluster for every user (pages read the gateway's copy, never the scheduler).",
    }),
    warnPercent: Type.Number({
      minimum: 0,
      maximum: 100,
      default: 80,
      description: 'Usage from this share of a limit (compute or storage) is shown in the warning colour.',
    }),
    criticalPercent: Type.Number({
      minimum: 0,
      maximum: 100,
      default: 95,
      description: 'Usage from this share of a limit is shown in the critical colour.',
    }),
    storage: Type.Array(StorageQuotaCommand, {
      default: [],
      maxItems: 16,
      description:
        'Storage quota commands, each run as the user; none: no storage quotas are shown. Output that fails, times out or cannot be parsed shows "quota unavailable" and is logged with the command\'s output.',
    }),
    storageRefreshSeconds: Type.Number({
      minimum: 1,
      maximum: 86400,
      default: 600,
      description:
        "How often the storage quota commands run again for each user who opened a page in the last `activeUserMinutes` (a user's first page view runs them once; later views read the gateway's copy).",
    }),
    activeUserMinutes: Type.Number({
      exclusiveMinimum: 0,
      maximum: 10080,
      default: 60,
      description: 'Users whose storage quotas are kept fresh: those seen in this many minutes.',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description:
      "Usage and quotas on the dashboard and beside the form's account field ([admin.md](admin.md#usage-and-quotas)).",
  },
);

const IdleSchema = Type.Object(
  {
    minutes: Type.Number({
      minimum: 0,
      default: 0,
      description:
        'Stop a running session after this many minutes without activity; 0 (the default): never. Fractions are allowed (0.5 is 30 seconds, for tests). Activity is what each app really does (see `idle.appSignals`), not the mere presence of an open tab.',
    }),
    warnMinutes: Type.Number({
      minimum: 0,
      default: 10,
      description:
        'Tell the user (in the page and as a browser notification) this many minutes before an idle session is stopped; any activity after that resets the clock.',
    }),
    checkSeconds: Type.Number({
      minimum: 0.5,
      default: 30,
      description: "How often the gateway looks at running sessions' activity (asks Jupyter, the terminal).",
    }),
    rules: Type.Array(IdleRuleSchema, {
      default: [],
      description:
        'Per partition, app or cluster: the first rule whose every given condition matches sets the idle minutes; sessions no rule matches get `idle.minutes`.',
    }),
    appSignals: Type.Record(Type.String(), IdleSignal, {
      default: {},
      description:
        "How an app's activity is judged, by app id: `jupyter` (its kernels: a busy kernel is never idle, else their last activity and the terminals'; saves through the gateway count), `terminal` (keyboard input in Atrium's terminal), `vnc` (keyboard and mouse events through the gateway's desktop bridge), `traffic` (requests and WebSocket messages from the browser through the proxy), `none` (never active). Built in: jupyter, terminal, desktop (vnc); every other app: traffic.",
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description: 'Stopping sessions nobody uses ([admin.md](admin.md#idle-sessions)).',
  },
);

const OidcSettings = Type.Object(
  {
    issuer: doc(
      "The provider's issuer URL (https://; its discovery document is read at start).",
      Type.String({ minLength: 1 }),
    ),
    clientId: doc('The client registered for the gateway at the provider.', Type.String({ minLength: 1 })),
    clientSecret: doc(
      'Its secret (confidential clients); PKCE is used either way.',
      Type.Optional(Type.String()),
    ),
    scopes: doc('Scopes asked for.', Type.Array(Type.String(), { default: ['openid', 'profile', 'email'] })),
    usernameClaim: doc(
      'The claim that holds the user name (mapped to the Unix account of that name).',
      Type.String({ default: 'preferred_username' }),
    ),
    groupsClaim: doc(
      "The claim that holds the user's groups (for `allowGroups`, `adminGroups`).",
      Type.String({ default: 'groups' }),
    ),
    label: doc('Text of the sign-in button.', Type.String({ default: 'Sign in with your institution' })),
    passTokensToSessions: doc(
      "Put the provider's access token into sessions' environment (kept fresh by the gateway).",
      Type.Boolean({ default: false }),
    ),
    allowInsecure: doc(
      'Allow an http:// issuer: only for test providers on http://127.0.0.1.',
      Type.Boolean({ default: false }),
    ),
  },
  { additionalProperties: false },
);

const LdapSettings = Type.Object(
  {
    url: doc('The directory, `ldap://host:389` or `ldaps://host:636`.', Type.String({ minLength: 1 })),
    userDnTemplate: doc(
      'DN of a user, `{username}` escaped (e.g. `uid={username},ou=people,dc=example,dc=org`); or use `searchBase` and a bind account.',
      Type.Optional(Type.String()),
    ),
    searchBase: doc(
      'Where users are searched for (with `searchFilter`), when there is no `userDnTemplate`.',
      Type.Optional(Type.String()),
    ),
    searchFilter: doc(
      'Filter that finds a user; `{username}` is escaped.',
      Type.String({ default: '(uid={username})' }),
    ),
    bindDn: doc('Account the gateway searches with (absent: anonymous).', Type.Optional(Type.String())),
    bindPassword: doc('Its password.', Type.Optional(Type.String())),
    groupSearchBase: doc(
      'Where groups are searched for (no groups when absent).',
      Type.Optional(Type.String()),
    ),
    groupFilter: doc(
      "Filter that finds a user's groups; `{username}` and `{dn}` are escaped.",
      Type.String({ default: '(|(memberUid={username})(member={dn}))' }),
    ),
    usernameAttribute: doc(
      'Attribute of the user entry that holds the user name.',
      Type.String({ default: 'uid' }),
    ),
    groupNameAttribute: doc(
      'Attribute of a group entry that names the group (used by allowGroups/adminGroups).',
      Type.String({ default: 'cn' }),
    ),
    startTls: doc(
      'Upgrade ldap:// connections with StartTLS (ldaps:// URLs use TLS from the start).',
      Type.Boolean({ default: false }),
    ),
    caFile: doc(
      "PEM file of the CA that signed the directory's certificate (the system CAs when absent).",
      Type.Optional(Type.String()),
    ),
    timeoutSeconds: doc(
      'A directory that does not answer within this time fails the sign-in.',
      Type.Number({ exclusiveMinimum: 0, default: 10 }),
    ),
    label: doc('Heading of the sign-in form.', Type.String({ default: 'Sign in with your cluster account' })),
  },
  { additionalProperties: false },
);

export const ConfigSchema = Type.Object(
  {
    server: doc(
      'Where the gateway listens and how it is reached.',
      Type.Object(
        {
          host: doc(
            'Listen address. Put a TLS-terminating reverse proxy in front for production (see [deploy.md](deploy.md)).',
            Type.String({ default: '127.0.0.1' }),
          ),
          port: doc('Listen port.', Type.Integer({ minimum: 0, maximum: 65535, default: 8000 })),
          publicUrl: doc(
            'The URL users reach the gateway at (default `http://host:port`). When it starts with `https://`, cookies are `Secure` and HSTS is sent.',
            Type.Optional(Type.String()),
          ),
          agentUrl: doc(
            'The URL agents on the nodes call back on, when it differs from `publicUrl` (e.g. an internal address).',
            Type.Optional(Type.String()),
          ),
          trustProxy: doc(
            'Trust `X-Forwarded-*` from the reverse proxies in front: `true` (every peer: only when nothing but the proxy can reach the gateway), or the proxies\' addresses or networks (CIDR, e.g. `["10.0.0.5", "fd00::/64"]`), whose X-Forwarded-For is read hop by hop from its right end up to the first address that is not one of them. Leave off otherwise: clients could spoof them. The client address so found is what `sourceNetworks`, rate limits and the audit log see.',
            Type.Union([Type.Boolean(), Type.Array(Type.String())], { default: false }),
          ),
        },
        { additionalProperties: false, default: {} },
      ),
    ),
    dataDir: Type.String({
      default: './data',
      description:
        'Database, initial admin password, local-backend job records. A relative path written in the file is relative to the file; the default `./data` is relative to the working directory (as without a file). `serve`, `user` and `admin` commands take `--data-dir` to override it.',
    }),
    runtimeDir: Type.String({
      default: '/var/lib/atrium-runtime',
      pattern: '^/',
      description:
        "Where the gateway places a copy of the files sessions run or read as their users (the agent, `share/` with the apps' helpers and Jupyter's sign-in module, the web terminal and its node-pty, the `atrium` command of sessions) when the users cannot read them where Atrium is, e.g. a checkout under /root (mode 700). One directory per version (root's, dirs 755, files 644/755); versions no gateway used for longer than the longest session are removed. Must be a directory every user can enter and only the gateway can write; unused when `agent.script` is set.",
    }),
    database: Type.Object(
      {
        url: Type.Optional(
          Type.String({
            description:
              "Where the state is: `sqlite:<file>` (default `sqlite:<dataDir>/atrium.db`) or `postgres://user:password@host:port/database` (PostgreSQL 15 or later; percent-encode `@ : /` in the password; libpq's `sslmode`/`sslrootcert` parameters work). A URL that is malformed, a server that does not answer or refuses the credentials stops `atrium serve` and `atrium config check` with one line naming `database.url`. Moving a site: `atrium db copy`, see [deploy.md](deploy.md).",
          }),
        ),
        poolSize: Type.Integer({
          minimum: 1,
          maximum: 1000,
          default: 10,
          description:
            "PostgreSQL connections each gateway keeps at most (the server's `max_connections` must cover every gateway's pool plus the CLI's). Unused with SQLite.",
        }),
      },
      {
        additionalProperties: false,
        default: {},
        description: 'Where the gateway keeps its state (users, sessions, jobs, audit...).',
      },
    ),
    log: doc(
      'Logging.',
      Type.Object(
        {
          level: doc(
            'pino level; logs are JSON lines on stdout.',
            Type.Union(
              ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
              { default: 'info' },
            ),
          ),
        },
        { additionalProperties: false, default: {} },
      ),
    ),
    auth: doc(
      'Sign-in and access; OIDC and LDAP in [configuration-auth.md](configuration-auth.md).',
      Type.Object(
        {
          local: doc(
            'Local accounts, kept in the database.',
            Type.Object(
              {
                enabled: doc(
                  'Local accounts (`atrium user add`), each mapped to a Unix user.',
                  Type.Boolean({ default: true }),
                ),
              },
              { additionalProperties: false, default: {} },
            ),
          ),
          oidc: doc(
            'OpenID Connect sign-in: see [configuration-auth.md](configuration-auth.md).',
            Type.Optional(OidcSettings),
          ),
          ldap: doc(
            'LDAP sign-in: see [configuration-auth.md](configuration-auth.md).',
            Type.Optional(LdapSettings),
          ),
          allowGroups: doc(
            'Only members of these groups may sign in; empty: everyone the providers accept.',
            Type.Array(Type.String(), { default: [] }),
          ),
          adminGroups: doc(
            'Members of these groups are administrators.',
            Type.Array(Type.String(), { default: [] }),
          ),
          adminUsers: doc('These user names are administrators.', Type.Array(Type.String(), { default: [] })),
          loginAttemptsPerMinute: doc(
            'Sign-in attempts per client address and per user name per minute.',
            Type.Integer({ minimum: 1, default: 10 }),
          ),
          apiRequestsPerMinute: Type.Integer({
            minimum: 1,
            default: 1200,
            description:
              'API requests per minute per user (browser or API token), or per client address when not signed in; more get HTTP 429.',
          }),
          apiTokenMaxDays: doc(
            'Longest lifetime of an API token a user creates, in days.',
            Type.Integer({ minimum: 1, default: 365 }),
          ),
          sessionHours: doc(
            'How long a browser stays signed in.',
            Type.Number({ exclusiveMinimum: 0, default: 12 }),
          ),
        },
        { additionalProperties: false, default: {} },
      ),
    ),
    sessions: doc(
      'Interactive sessions, on every cluster.',
      Type.Object(
        {
          heartbeatSeconds: doc('How often agents report.', Type.Number({ minimum: 1, default: 15 })),
          heartbeatMissed: Type.Integer({
            minimum: 1,
            default: 3,
            description:
              'A running session whose agent misses this many heartbeats in a row is shown as "not responding since HH:MM" (on its card and on the error page of its address) until the next heartbeat; it ends only when the scheduler says its job or node is gone.',
          }),
          startTimeoutSeconds: doc(
            'A session whose job runs but whose app never answers is stopped after this.',
            Type.Number({ minimum: 5, default: 600 }),
          ),
          warnMinutesBeforeEnd: doc(
            "Users are warned this long before a session's time limit.",
            Type.Number({ minimum: 0, default: 15 }),
          ),
          maxPerUser: doc('Active sessions per user.', Type.Integer({ minimum: 1, default: 10 })),
          desktopLinkMaxMinutes: doc(
            'Longest lifetime, in minutes, of a one-time desktop link, with which the owner of a running desktop session lets one other browser see or use that desktop ([security.md](security.md#one-time-desktop-links)); 0 turns the links off. Fractions are allowed (for tests).',
            Type.Number({ minimum: 0, default: 60 }),
          ),
        },
        { additionalProperties: false, default: {} },
      ),
    ),
    agent: doc(
      'The agent that runs inside every session (starts the app, calls the gateway back).',
      Type.Object(
        {
          node: Type.Optional(
            Type.String({
              description:
                "Node.js on the nodes; the gateway's own when absent. Users must be able to run it: the gateway refuses to start when they cannot run its own (e.g. a Node.js under /root).",
            }),
          ),
          script: Type.Optional(
            Type.String({
              description:
                "The agent bundle as seen from the nodes (a shared file system path; the agent finds `share/` next to its `dist/`). When absent: Atrium's `dist/agent/atrium-agent.mjs`, or its copy in `runtimeDir`. `atrium config check` checks, for each cluster, that the users can read it and run `agent.node`, where this host has those paths.",
            }),
          ),
        },
        { additionalProperties: false, default: {} },
      ),
    ),
    clusters: doc(
      'The clusters: each entry is one scheduler behind one backend. Default: one `local` cluster.',
      Type.Array(ClusterSchema, {
        default: [{ name: 'local', backend: 'local', title: 'This machine' }],
        minItems: 1,
      }),
    ),
    apps: doc(
      'Apps added to the catalogue, or built-in ones changed by `id`; see [apps.md](apps.md).',
      Type.Array(AppSchema, { default: [] }),
    ),
    appsFile: doc(
      'YAML file of more catalogue entries (a list, or `apps:` holding one); relative to this file.',
      Type.Optional(Type.String({ minLength: 1 })),
    ),
    environmentsFile: doc(
      'YAML file of more environments (a list, or `environments:` holding one); relative to this file.',
      Type.Optional(Type.String({ minLength: 1 })),
    ),
    environments: doc(
      'The software stacks offered on the form. Default: one `system` environment with no setup.',
      Type.Array(EnvironmentSchema, {
        default: [
          {
            id: 'system',
            name: 'System software',
            description: 'The software installed on the nodes.',
            setup: [],
          },
        ],
      }),
    ),
    metrics: doc(
      'Who may read `/metrics`: these addresses or networks (CIDR), or a bearer token when set; see [admin.md](admin.md).',
      Type.Object(
        {
          allowFrom: doc(
            'Addresses or CIDR networks that may read `/metrics`.',
            Type.Array(Type.String({ pattern: '^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$' }), {
              default: ['127.0.0.1', '::1'],
            }),
          ),
          token: doc(
            'Also allow requests with `Authorization: Bearer <token>` (16 characters or more).',
            Type.Optional(Type.String({ minLength: 16 })),
          ),
        },
        { additionalProperties: false, default: {} },
      ),
    ),
    sourceNetworks: doc(
      'Which client addresses may use the gateway at all (the API, the pages and the sessions behind the proxy, WebSockets included); clusters may narrow it further (`clusters[].sourceNetworks`). See [security.md](security.md#source-networks).',
      SourceNetworksSchema,
    ),
    files: FilesSchema,
    idle: IdleSchema,
    usage: UsageSchema,
    installPackages: doc(
      'At start, install missing Debian packages that local sessions need (when running as root).',
      Type.Boolean({ default: true }),
    ),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
export type ClusterConfig = Static<typeof ClusterSchema>;
export type EnvironmentConfig = Static<typeof EnvironmentSchema>;
export type AppConfig = Static<typeof AppSchema>;
export type FilesConfig = Static<typeof FilesSchema>;
export type IdleConfig = Static<typeof IdleSchema>;
export type UsageConfig = Static<typeof UsageSchema>;
export type IdleSignalName = Static<typeof IdleSignal>;
export type SourceNetworksConfig = Static<typeof SourceNetworksSchema>;
