// Clusters: what the new-session form offers and the live free-resources table.
import Type, { type Static } from 'typebox';
import { Model, Nullable } from './common.ts';

/** /api/clusters/:name/... (an unknown name is "no such cluster"). */
export const ClusterParams = Type.Object({ name: Type.String() });
export type ClusterParams = Static<typeof ClusterParams>;

// ---- replies ---------------------------------------------------------------------------------------

const Names = (description?: string) =>
  Type.Immutable(Type.Array(Type.String(), description ? { description } : {}));

/** What a new session may ask for on a cluster, for this user (from the config and the live poll). */
export const RequestLimits = Model('RequestLimits', {
  maxCores: Type.Number(),
  maxMemoryGb: Type.Number(),
  maxGpus: Type.Number({ description: 'GPUs on the largest GPU node; 0 when the cluster has none.' }),
  maxHours: Type.Number(),
  apps: Names('App ids a session may run.'),
  extraApps: Type.Optional(
    Names('Apps that may run next to the main app in one session; all of `apps` when absent.'),
  ),
  environments: Names(),
  partitions: Type.Optional(Names('When set, the partition must be one of these.')),
  accounts: Type.Optional(
    Names(
      "When set, the account must be one of these (the user's accounts); absent: no accounts on this cluster.",
    ),
  ),
  reservations: Type.Optional(Names('Reservations this user may use.')),
  perPartition: Type.Optional(
    Type.Record(
      Type.String(),
      Type.Object({
        maxCores: Type.Number(),
        maxMemoryGb: Type.Number(),
        maxGpus: Type.Number(),
        maxHours: Type.Optional(Type.Number()),
      }),
      { description: 'Per-partition limits (e.g. a partition with smaller nodes).' },
    ),
  ),
});
export type RequestLimits = Static<typeof RequestLimits>;

/** Nodes with this many free GPUs, and what is free on them. */
export const FreeRow = Model('FreeRow', {
  freeGpus: Type.Number(),
  label: Type.String({ description: '"no free GPU", "1 free GPU", "2 free GPUs"' }),
  nodes: Type.Number(),
  freeCores: Type.Number(),
  freeMemoryMb: Type.Number(),
});
export type FreeRow = Static<typeof FreeRow>;

/** The free-resources table beside the new-session form. */
export const FreeTable = Model('FreeTable', {
  cluster: Type.String(),
  at: Type.Number({ description: 'When the numbers were polled; 0 before the first poll.' }),
  rows: Type.Array(FreeRow),
  fresh: Type.Boolean({
    description: 'false when the numbers are from an older poll because the scheduler is unreachable now.',
  }),
});
export type FreeTable = Static<typeof FreeTable>;

/** An app the form offers. */
export const AppChoice = Model('AppChoice', {
  id: Type.String(),
  name: Type.String(),
  description: Type.String(),
  icon: Nullable(Type.String()),
  available: Type.Optional(
    Type.Boolean({
      description: 'false when the app is not installed where sessions run (offered disabled).',
    }),
  ),
  missing: Type.Optional(Type.Array(Type.String(), { description: 'What is missing when not available.' })),
  extra: Type.Optional(
    Type.Boolean({ description: "May run as an extra app next to a session's main app." }),
  ),
});
export type AppChoice = Static<typeof AppChoice>;

export const EnvironmentChoice = Type.Object(
  { id: Type.String(), name: Type.String(), description: Type.String() },
  { title: 'EnvironmentChoice' },
);
export type EnvironmentChoice = Static<typeof EnvironmentChoice>;

/** Under a cluster's `projectAccess` rule, why this user may start nothing there. */
export const AccessRefused = Type.String({
  description:
    "Present when the cluster admits only members of an active project and this user has none: which project is needed and where to ask (the site's words), as the API refuses a start there.",
});

/** A cluster as the new-session form shows it to this user. */
export const ClusterView = Model('ClusterView', {
  name: Type.String(),
  title: Type.String(),
  backend: Type.String(),
  drained: Type.Boolean({ description: 'Closed for new sessions by an administrator.' }),
  reachable: Type.Boolean({ description: 'The last poll of the scheduler succeeded.' }),
  defaultHours: Type.Number(),
  limits: RequestLimits,
  defaultPartition: Nullable(Type.String()),
  apps: Type.Array(AppChoice),
  environments: Type.Array(EnvironmentChoice),
  free: FreeTable,
  accessRefused: Type.Optional(AccessRefused),
});
export type ClusterView = Static<typeof ClusterView>;

export const ClustersReply = Type.Object({ clusters: Type.Array(ClusterView) });
export type ClustersReply = Static<typeof ClustersReply>;

/** What a node or a partition has, and how much of it is allocated. */
const capacity = {
  cpus: Type.Number(),
  allocCpus: Type.Number(),
  memoryMb: Type.Number(),
  allocMemoryMb: Type.Number(),
  gpus: Type.Number(),
  allocGpus: Type.Number(),
};

/** A partition's size and load. */
export const PartitionLoad = Model('PartitionLoad', {
  name: Type.String(),
  isDefault: Type.Boolean(),
  state: Nullable(Type.String()),
  maxTimeMinutes: Nullable(Type.Number()),
  nodes: Type.Number(),
  ...capacity,
  running: Type.Number(),
  pending: Type.Number(),
});
export type PartitionLoad = Static<typeof PartitionLoad>;

export const NodeRow = Model('NodeRow', {
  name: Type.String(),
  state: Type.String(),
  partitions: Type.Array(Type.String()),
  ...capacity,
  gpuType: Nullable(Type.String()),
});
export type NodeRow = Static<typeof NodeRow>;

/** A cluster's nodes and partitions as of the last poll. */
export const ClusterStatus = Model('ClusterStatus', {
  cluster: Type.String(),
  at: Type.Number({ description: 'When the numbers were polled; 0 before the first poll.' }),
  fresh: Type.Boolean(),
  nodesByState: Type.Record(Type.String(), Type.Number(), {
    description: 'Node count per state word ("idle", "mixed", "allocated", "down", "drained", ...).',
  }),
  partitions: Type.Array(PartitionLoad),
  totals: Type.Object({
    nodes: Type.Number(),
    cpus: Type.Number(),
    allocCpus: Type.Number(),
    gpus: Type.Number(),
    allocGpus: Type.Number(),
  }),
  nodes: Nullable(
    Type.Array(NodeRow, {
      description: 'Per-node rows; null when the site hides nodes (PrivateData=nodes).',
    }),
  ),
});
export type ClusterStatus = Static<typeof ClusterStatus>;
