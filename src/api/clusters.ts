// Clusters: what the new-session form offers and the live free-resources table.
import Type, { type Static } from 'typebox';

/** /api/clusters/:name/... (an unknown name is "no such cluster"). */
export const ClusterParams = Type.Object({ name: Type.String() });
export type ClusterParams = Static<typeof ClusterParams>;
