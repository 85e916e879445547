// The dashboard: my sessions, the new-session form and what is free on the chosen cluster.
import { useCallback, useEffect, useRef, useState } from 'react';
import { get } from '../api.ts';
import { Announcements } from '../components/Announcements.tsx';
import { FreeNow } from '../components/FreeNow.tsx';
import { NewSessionForm } from '../components/NewSessionForm.tsx';
import { SessionList } from '../components/SessionList.tsx';
import { useToasts } from '../components/Toasts.tsx';
import { useLiveEvent, useLiveReconnect } from '../live.ts';
import { useSearch } from '../router.tsx';
import { useSessions } from '../sessions-store.tsx';
import type { ClusterView, FreeTable, PageProps, SessionView } from '../types.ts';

function isFreeTable(v: unknown): v is FreeTable {
  const t = v as FreeTable;
  return typeof t?.cluster === 'string' && Array.isArray(t.rows) && typeof t.at === 'number';
}

export function SessionsPage(_props: PageProps) {
  const { sessions, error, upsert } = useSessions();
  const { notify } = useToasts();
  const [clusters, setClusters] = useState<ClusterView[] | null>(null);
  const [clustersError, setClustersError] = useState<string | null>(null);
  const [free, setFree] = useState<Record<string, FreeTable>>({});
  const [selected, setSelected] = useState<string | null>(null);
  // Links elsewhere (e.g. a job's "open in Jupyter") pre-fill the form: /?cluster=<name>&app=<id>.
  const search = useSearch();
  const wanted = { app: search.get('app'), environment: search.get('environment') };
  const wantedCluster = useRef(search.get('cluster'));

  const loadClusters = useCallback(async () => {
    try {
      const r = await get<{ clusters: ClusterView[] }>('/api/clusters');
      setClusters(r.clusters);
      setFree((old) => {
        const out = { ...old };
        for (const c of r.clusters) if (!out[c.name] || out[c.name]!.at <= c.free.at) out[c.name] = c.free;
        return out;
      });
      setSelected((cur) =>
        cur && r.clusters.some((c) => c.name === cur)
          ? cur
          : ((
              r.clusters.find((c) => c.name === wantedCluster.current) ??
              r.clusters.find((c) => !c.drained) ??
              r.clusters[0]
            )?.name ?? null),
      );
      setClustersError(null);
    } catch (e) {
      setClustersError(e instanceof Error ? e.message : String(e));
    }
  }, []);

  useEffect(() => {
    void loadClusters();
  }, [loadClusters]);
  useLiveReconnect(() => void loadClusters());
  // An administrator drained or reopened a cluster.
  useLiveEvent('cluster', () => void loadClusters());

  useLiveEvent('resources', (data) => {
    if (isFreeTable(data)) setFree((old) => ({ ...old, [data.cluster]: data }));
  });

  const cluster = clusters?.find((c) => c.name === selected) ?? null;
  const clusterTitle = (name: string) => clusters?.find((c) => c.name === name)?.title ?? name;

  const started = (s: SessionView) => {
    upsert(s);
    notify({
      tone: 'ok',
      title: `${s.appName} session requested`,
      message: `On ${clusterTitle(s.cluster)}: follow it under My sessions; Connect becomes available once it runs.`,
    });
  };

  return (
    <div className="dashboard">
      <h1 className="visually-hidden">Sessions</h1>
      <Announcements />
      <SessionList sessions={sessions} error={error} clusterTitle={clusterTitle} onChanged={upsert} />
      {clustersError && (
        <p className="alert alert-bad" role="alert">
          The clusters could not be loaded: {clustersError}
        </p>
      )}
      {clusters !== null && clusters.length === 0 && (
        <section className="card">
          <h2>New session</h2>
          <p>No cluster is open to your account. Ask the administrators for access.</p>
        </section>
      )}
      {cluster && clusters && (
        <div className="split">
          <NewSessionForm
            clusters={clusters}
            cluster={cluster}
            onClusterChange={setSelected}
            onStarted={started}
            initial={{ app: wanted.app ?? undefined, environment: wanted.environment ?? undefined }}
          />
          <FreeNow title={cluster.title} table={free[cluster.name]} />
        </div>
      )}
    </div>
  );
}
