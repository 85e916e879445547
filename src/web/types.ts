// Shapes of what the API returns: the API contract's own types (src/api/; type-only imports are erased
// from the bundle), so a change on the server side shows up here at type-check time.
import type { Me } from '../api/auth.ts';

export type { AuthMethods, Me } from '../api/auth.ts';
export type {
  AppChoice,
  ClusterView,
  EnvironmentChoice,
  FreeRow,
  FreeTable,
  RequestLimits,
} from '../api/clusters.ts';
export type { LastUsed, PresetReply, PresetsReply, PresetValues, PresetView } from '../api/presets.ts';
export type { SessionEventRow, SessionRequest, SessionView } from '../api/sessions.ts';

/** What every signed-in page gets (src/web/pages.ts lists the pages). */
export interface PageProps {
  me: Me;
}
