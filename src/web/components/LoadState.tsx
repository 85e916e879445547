// What a page shows before, or instead of, what it loads: the error, "Loading…", or the note for an empty
// list; and, for the forms that need a cluster, the card that stands in when no cluster is open to the user.
import type { ReactNode } from 'react';

interface ListStateProps {
  /** Whose list, as the error sentence begins: "Your jobs". */
  what: string;
  error: string | null;
  /** The rows that are shown, or null while loading. */
  items: readonly unknown[] | null;
  /** The note when there are none. */
  children: ReactNode;
}

export function ListState({ what, error, items, children }: ListStateProps) {
  return (
    <>
      {error && (
        <p className="alert alert-bad" role="alert">
          {what} could not be loaded: {error}
        </p>
      )}
      {items === null && !error && <p className="muted">Loading…</p>}
      {items !== null && items.length === 0 && <p className="empty">{children}</p>}
    </>
  );
}

interface NoClusterProps {
  error: string | null;
  clusters: readonly unknown[] | null;
  /** The title of the form this card stands in for. */
  title: string;
  children: ReactNode;
}

/** The error of the cluster list, or, when it is empty, a card titled as the form it replaces. */
export function NoCluster({ error, clusters, title, children }: NoClusterProps) {
  return (
    <>
      {error && (
        <p className="alert alert-bad" role="alert">
          The clusters could not be loaded: {error}
        </p>
      )}
      {clusters !== null && clusters.length === 0 && (
        <section className="card">
          <h2>{title}</h2>
          {children}
        </section>
      )}
    </>
  );
}
