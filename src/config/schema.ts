// The one configuration file, as a JSON schema (typebox). Defaults live here, so an empty file is a
// working embedded setup: SQLite, the local backend, local accounts.
import Type, { type Static } from 'typebox';

const Name = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' });

const AppReadiness = Type.Object(
  {
    http: Type.Optional(Type.String()),
    rfb: Type.Optional(Type.Boolean()),
    tcp: Type.Optional(Type.Boolean()),
    /** 120 when absent (applied after merging with a built-in app). */
    timeoutSeconds: Type.Optional(Type.Number({ minimum: 1 })),
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
    id: Name,
    name: Type.Optional(Type.String({ minLength: 1 })),
    description: Type.Optional(Type.String()),
    icon: Type.Optional(Type.String()),
    command: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
    env: Type.Optional(Type.Record(Type.String(), Type.String())),
    prefix: Type.Optional(Type.Union([Type.Literal('keep'), Type.Literal('strip')])),
    ready: Type.Optional(AppReadiness),
    upstreamHeaders: Type.Optional(Type.Record(Type.String(), Type.String())),
    transport: Type.Optional(Type.Union([Type.Literal('http'), Type.Literal('rfb')])),
    unixSocket: Type.Optional(Type.Boolean()),
    stop: Type.Optional(
      Type.Object(
        {
          signal: Type.Optional(
            Type.Union([Type.Literal('SIGTERM'), Type.Literal('SIGINT'), Type.Literal('SIGHUP')]),
          ),
          graceSeconds: Type.Optional(Type.Number({ minimum: 0 })),
        },
        { additionalProperties: false },
      ),
    ),
    requires: Type.Optional(Type.Array(Type.String())),
    clusters: Type.Optional(Type.Array(Name)),
    openPath: Type.Optional(Type.String()),
    /** false: not offered as an extra app next to another app in one session. */
    extra: Type.Optional(Type.Boolean()),
    /** true: removes the built-in app of this id. */
    disabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const EnvironmentSchema = Type.Object(
  {
    id: Name,
    name: Type.String({ minLength: 1 }),
    description: Type.String({ default: '' }),
    /** Shell lines run in the session before the app starts (module load, source venv/bin/activate...). */
    setup: Type.Array(Type.String(), { default: [] }),
    /** Run every app of the session in this container image (after the setup lines). */
    container: Type.Optional(
      Type.Object(
        {
          image: Type.String({ minLength: 1 }),
          /** apptainer, singularity, or another runtime with `<runtime> exec <args> <image> <argv>`. */
          runtime: Type.String({ minLength: 1, default: 'apptainer' }),
          /** e.g. ["--nv", "--bind", "/opt/atrium"]; placeholders as in app commands. */
          args: Type.Array(Type.String(), { default: [] }),
        },
        { additionalProperties: false },
      ),
    ),
    clusters: Type.Optional(Type.Array(Name)),
  },
  { additionalProperties: false },
);

const Limits = Type.Object(
  {
    maxCores: Type.Optional(Type.Integer({ minimum: 1 })),
    maxMemoryGb: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    maxGpus: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);

const PartitionRule = Type.Object(
  {
    partition: Name,
    /** The rule matches when every given condition holds. */
    minGpus: Type.Optional(Type.Integer({ minimum: 0 })),
    maxCores: Type.Optional(Type.Integer({ minimum: 1 })),
    maxHours: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  },
  { additionalProperties: false },
);

const SlurmSettings = Type.Object(
  {
    /** Path of slurm.conf (sets SLURM_CONF for every command); Slurm's default when absent. */
    conf: Type.Optional(Type.String()),
    /** Directory of the Slurm commands; PATH when absent. */
    binDir: Type.Optional(Type.String()),
    /** How commands run as the user: runuser (gateway runs as root), sudo (service user with sudo rules). */
    runAs: Type.Union([Type.Literal('runuser'), Type.Literal('sudo'), Type.Literal('none')], {
      default: 'sudo',
    }),
    pollSeconds: Type.Number({ minimum: 1, default: 10 }),
    commandTimeoutSeconds: Type.Number({ minimum: 1, default: 30 }),
    /** Partition for sessions when no rule matches and the user picks none. */
    partition: Type.Optional(Name),
    /** Partitions offered on the form (all when absent). */
    partitions: Type.Optional(Type.Array(Name)),
    /** Automatic partition choice on the requested resources (first match wins). */
    partitionRules: Type.Optional(Type.Array(PartitionRule)),
    /** Accounts offered when the cluster has no accounting database. */
    accounts: Type.Optional(Type.Array(Name)),
    /**
     * Admin only: run this cluster's sessions on these nodes only (a Slurm hostlist such as
     * "node[1-4]", passed as --nodelist; the form's limits and free table then count these nodes only).
     * Lets one Slurm cluster appear as several gateway clusters, e.g. a set of interactive nodes.
     */
    nodelist: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.,\\[\\]-]{0,1023}$' })),
    /** Partitions offered for batch jobs. */
    batchPartitions: Type.Optional(Type.Array(Name)),
    /** The site delivers Slurm's job mail (MailProg works): users may ask for e-mail via --mail-type. */
    mail: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);

const SshSettings = Type.Object(
  {
    host: Type.String({ minLength: 1 }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 22 }),
    /** Private key the gateway uses (`{user}`: the user's name, for one key per user); the remote account is the user's own. */
    keyFile: Type.Optional(Type.String()),
    /** Address the gateway uses to reach apps on that host. */
    address: Type.Optional(Type.String()),
    knownHostsFile: Type.Optional(Type.String()),
    /** ssh client binary (OpenSSH). */
    sshCommand: Type.String({ default: '/usr/bin/ssh' }),
    /** Account the poll logs in as (`ps` lists every user's agents); the gateway's own user when absent. */
    pollUser: Type.Optional(Type.String({ pattern: '^[a-z_][a-z0-9_.-]{0,31}$' })),
    pollSeconds: Type.Number({ minimum: 1, default: 10 }),
    commandTimeoutSeconds: Type.Number({ minimum: 1, default: 30 }),
  },
  { additionalProperties: false },
);

export const ClusterSchema = Type.Object(
  {
    name: Name,
    title: Type.Optional(Type.String()),
    backend: Type.Union([Type.Literal('local'), Type.Literal('slurm'), Type.Literal('ssh')]),
    limits: Type.Optional(Limits),
    /** Longest session, in hours (Slurm sites often allow 8 to 36). */
    maxHours: Type.Number({ exclusiveMinimum: 0, default: 8 }),
    defaultHours: Type.Number({ exclusiveMinimum: 0, default: 2 }),
    /** Address the agent binds apps to on the node. */
    bindHost: Type.String({ default: '127.0.0.1' }),
    /** Groups allowed to use the cluster (all signed-in users when empty). */
    allowGroups: Type.Array(Type.String(), { default: [] }),
    /** Admins may stop new sessions here (drain). */
    drained: Type.Boolean({ default: false }),
    /**
     * How the gateway reaches apps that listen on a Unix socket: `unix` connects to the socket (the
     * nodes are this host: local backend, single-host test clusters); `relay` has the agent accept
     * TCP on the node with a per-session secret and pass it on. Default: unix for local, else relay.
     */
    appSockets: Type.Optional(Type.Union([Type.Literal('unix'), Type.Literal('relay')])),
    /** Check apps' `requires` on this host (the nodes have the same software). Default: local only. */
    checkInstalled: Type.Optional(Type.Boolean()),
    slurm: Type.Optional(SlurmSettings),
    ssh: Type.Optional(SshSettings),
  },
  { additionalProperties: false },
);

const OidcSettings = Type.Object(
  {
    issuer: Type.String({ minLength: 1 }),
    clientId: Type.String({ minLength: 1 }),
    clientSecret: Type.Optional(Type.String()),
    scopes: Type.Array(Type.String(), { default: ['openid', 'profile', 'email'] }),
    usernameClaim: Type.String({ default: 'preferred_username' }),
    groupsClaim: Type.String({ default: 'groups' }),
    label: Type.String({ default: 'Sign in with your institution' }),
    /** Put the provider's access token into sessions' environment (kept fresh by the gateway). */
    passTokensToSessions: Type.Boolean({ default: false }),
    /** Only for test providers on http://127.0.0.1. */
    allowInsecure: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);

const LdapSettings = Type.Object(
  {
    url: Type.String({ minLength: 1 }),
    /** DN template, {username} is escaped; or use searchBase + bind account. */
    userDnTemplate: Type.Optional(Type.String()),
    searchBase: Type.Optional(Type.String()),
    searchFilter: Type.String({ default: '(uid={username})' }),
    bindDn: Type.Optional(Type.String()),
    bindPassword: Type.Optional(Type.String()),
    groupSearchBase: Type.Optional(Type.String()),
    groupFilter: Type.String({ default: '(|(memberUid={username})(member={dn}))' }),
    usernameAttribute: Type.String({ default: 'uid' }),
    /** Attribute of a group entry that names the group (used by allowGroups/adminGroups). */
    groupNameAttribute: Type.String({ default: 'cn' }),
    /** Upgrade ldap:// connections with StartTLS (ldaps:// URLs use TLS from the start). */
    startTls: Type.Boolean({ default: false }),
    /** PEM file of the CA that signed the directory's certificate (the system CAs when absent). */
    caFile: Type.Optional(Type.String()),
    timeoutSeconds: Type.Number({ exclusiveMinimum: 0, default: 10 }),
    label: Type.String({ default: 'Sign in with your cluster account' }),
  },
  { additionalProperties: false },
);

export const ConfigSchema = Type.Object(
  {
    server: Type.Object(
      {
        host: Type.String({ default: '127.0.0.1' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8000 }),
        /** URL users and agents reach the gateway at; http://host:port when absent. */
        publicUrl: Type.Optional(Type.String()),
        /** URL agents call back on, when it differs from publicUrl (e.g. an internal address). */
        agentUrl: Type.Optional(Type.String()),
        /** Honour X-Forwarded-* from a reverse proxy in front. */
        trustProxy: Type.Boolean({ default: false }),
      },
      { additionalProperties: false, default: {} },
    ),
    dataDir: Type.String({ default: './data' }),
    database: Type.Object(
      { url: Type.Optional(Type.String()) },
      { additionalProperties: false, default: {} },
    ),
    log: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info' },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    auth: Type.Object(
      {
        local: Type.Object(
          { enabled: Type.Boolean({ default: true }) },
          { additionalProperties: false, default: {} },
        ),
        oidc: Type.Optional(OidcSettings),
        ldap: Type.Optional(LdapSettings),
        /** Who may sign in: everyone known to the providers, or members of these groups. */
        allowGroups: Type.Array(Type.String(), { default: [] }),
        adminGroups: Type.Array(Type.String(), { default: [] }),
        adminUsers: Type.Array(Type.String(), { default: [] }),
        /** Sign-in attempts per IP and per user name per minute. */
        loginAttemptsPerMinute: Type.Integer({ minimum: 1, default: 10 }),
        /** API requests per minute per user (browser or API token), or per IP when not signed in. */
        apiRequestsPerMinute: Type.Integer({ minimum: 1, default: 1200 }),
        /** Longest lifetime of an API token a user creates, in days. */
        apiTokenMaxDays: Type.Integer({ minimum: 1, default: 365 }),
        sessionHours: Type.Number({ exclusiveMinimum: 0, default: 12 }),
      },
      { additionalProperties: false, default: {} },
    ),
    sessions: Type.Object(
      {
        heartbeatSeconds: Type.Number({ minimum: 1, default: 15 }),
        startTimeoutSeconds: Type.Number({ minimum: 5, default: 600 }),
        warnMinutesBeforeEnd: Type.Number({ minimum: 0, default: 15 }),
        maxPerUser: Type.Integer({ minimum: 1, default: 10 }),
      },
      { additionalProperties: false, default: {} },
    ),
    agent: Type.Object(
      {
        /** Node.js on the nodes; the gateway's own when absent. */
        node: Type.Optional(Type.String()),
        /** Path of the agent bundle as seen from the nodes (shared file system); built-in when absent. */
        script: Type.Optional(Type.String()),
      },
      { additionalProperties: false, default: {} },
    ),
    clusters: Type.Array(ClusterSchema, {
      default: [{ name: 'local', backend: 'local', title: 'This machine' }],
      minItems: 1,
    }),
    apps: Type.Array(AppSchema, { default: [] }),
    /** YAML file of more catalogue entries (a list, or `apps:` holding one); relative to this file. */
    appsFile: Type.Optional(Type.String({ minLength: 1 })),
    /** YAML file of more environments (a list, or `environments:` holding one); relative to this file. */
    environmentsFile: Type.Optional(Type.String({ minLength: 1 })),
    environments: Type.Array(EnvironmentSchema, {
      default: [
        {
          id: 'system',
          name: 'System software',
          description: 'The software installed on the nodes.',
          setup: [],
        },
      ],
    }),
    /** Who may read /metrics: these addresses or networks (CIDR), or a bearer token when set. */
    metrics: Type.Object(
      {
        allowFrom: Type.Array(Type.String({ pattern: '^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$' }), {
          default: ['127.0.0.1', '::1'],
        }),
        token: Type.Optional(Type.String({ minLength: 16 })),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Install missing system packages (jupyter...) at start when running as root. */
    installPackages: Type.Boolean({ default: true }),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
export type ClusterConfig = Static<typeof ClusterSchema>;
export type EnvironmentConfig = Static<typeof EnvironmentSchema>;
export type AppConfig = Static<typeof AppSchema>;
