// The dashboard: my sessions, the new-session form and what is free on the chosen cluster.
import { useCallback, useEffect, useRef, useState } from 'react';
import { get } from '../api.ts';
import { Announcements } from '../components/Announcements.tsx';
import { FreeNow } from '../components/FreeNow.tsx';
import { NoCluster } from '../components/LoadState.tsx';
import { NewSessionForm } from '../components/NewSessionForm.tsx';
import { SessionList } from '../components/SessionList.tsx';
import { useToasts } from '../components/Toasts.tsx';
import { UsagePanel } from '../components/Usage.tsx';
import { useLiveEvent, useLiveReconnect } from '../live.ts';
import { type Fill, nextSeq, recallFor, sessionFill } from '../presets.ts';
import { useSearch } from '../router.tsx';
import { useSessions } from '../sessions-store.tsx';
import type { ClusterView, FreeTable, PageProps, PresetsReply, SessionView } from '../types.ts';

function isFreeTable(v: unknown): v is FreeTable {
  const t = v as FreeTable;
  return typeof t?.cluster === 'string' && Array.isArray(t.rows) && typeof t.at === 'number';
}

export function SessionsPage({ me }: PageProps) {
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
  // Presets and last-used values; null until read (undefined: they could not be, the form goes on).
  const [saved, setSaved] = useState<PresetsReply | null | undefined>(null);
  const [fill, setFill] = useState<Fill | null>(null);
  const formAt = useRef<HTMLDivElement>(null);

  const loadSaved = useCallback(async () => {
    try {
      setSaved(await get<PresetsReply>('/api/presets'));
    } catch {
      setSaved((old) => old ?? undefined);
    }
  }, []);
  useEffect(() => {
    void loadSaved();
  }, [loadSaved]);

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
  const appName = (id: string) => clusters?.flatMap((c) => c.apps).find((a) => a.id === id)?.name ?? id;
  const recall = (name: string, app?: string) => recallFor(saved ?? null, name, app, appName);
  const ready = cluster !== null && saved !== null;

  // The form opens once with the user's values for the cluster: a link's app and environment, over the
  // default preset or the newest session's values.
  const opened = useRef(false);
  // biome-ignore lint/correctness/useExhaustiveDependencies: once, when both the clusters and the saved values are in
  useEffect(() => {
    if (!ready || opened.current || !cluster) return;
    opened.current = true;
    if (wanted.app) {
      const r = recall(cluster.name, wanted.app);
      const link = { app: wanted.app, ...(wanted.environment ? { environment: wanted.environment } : {}) };
      setFill({ seq: nextSeq(), kind: 'recall', from: 'The link', ...r, values: { ...r?.values, ...link } });
    } else {
      setFill(recall(cluster.name));
    }
  }, [ready]);

  /** "Launch again": the ended session's values on the form, on its cluster, to check and start. */
  const launchAgain = (s: SessionView) => {
    if (!clusters?.some((c) => c.name === s.cluster)) {
      notify({
        tone: 'bad',
        title: 'Cannot launch again',
        message: `The cluster ${s.cluster} is no longer open to you.`,
      });
      return;
    }
    setSelected(s.cluster);
    setFill(sessionFill(s));
    formAt.current?.scrollIntoView({ block: 'start' });
    formAt.current?.querySelector<HTMLElement>('#f-app')?.focus({ preventScroll: true });
  };

  const started = (s: SessionView) => {
    upsert(s);
    void loadSaved();
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
      <SessionList
        sessions={sessions}
        error={error}
        clusterTitle={clusterTitle}
        onChanged={upsert}
        onLaunchAgain={launchAgain}
      />
      <NoCluster error={clustersError} clusters={clusters} title="New session">
        <p>No cluster is open to your account. Ask the administrators for access.</p>
      </NoCluster>
      {cluster && clusters && ready && (
        <div className="split" ref={formAt}>
          <NewSessionForm
            clusters={clusters}
            cluster={cluster}
            onClusterChange={setSelected}
            onStarted={started}
            fill={fill}
            saved={saved ?? null}
            isAdmin={me.isAdmin}
            recall={recall}
            onPresetsChanged={() => void loadSaved()}
          />
          <FreeNow title={cluster.title} table={free[cluster.name]} />
        </div>
      )}
      <UsagePanel />
    </div>
  );
}
