// "My sessions": the active ones with their state, what they wait for, the time they have left and
// Connect/Stop; ended ones in a collapsed "Recent" list with why they ended.
import { type ReactNode, useState } from 'react';
import { ApiError, del, sentence } from '../api.ts';
import {
  formatResources,
  formatTimeLeft,
  formatWhen,
  isFinished,
  notRespondingText,
  queueDetails,
  sessionSince,
  sessionTitle,
  stateBadge,
  timeLeftIsShort,
} from '../format.ts';
import { useNow } from '../hooks.ts';
import { type IdleStatus, idleWarning, useIdle } from '../idle.ts';
import type { SessionView } from '../types.ts';
import { AddTimeButton } from './AddTimeButton.tsx';
import { Card } from './Card.tsx';
import { ConfirmDialog } from './ConfirmDialog.tsx';
import { DataTable } from './DataTable.tsx';
import { DesktopLinkButton } from './DesktopLinkButton.tsx';
import { ListState } from './LoadState.tsx';
import { RowButton } from './RowButton.tsx';
import { ACTIONS } from './TableHead.tsx';
import { useToasts } from './Toasts.tsx';

interface Props {
  sessions: SessionView[] | null;
  error: string | null;
  clusterTitle(name: string): string;
  onChanged(s: SessionView): void;
  /** Fill the new-session form with an ended session's values. */
  onLaunchAgain(s: SessionView): void;
}

const RECENT_MAX = 20;

export function SessionList({ sessions, error, clusterTitle, onChanged, onLaunchAgain }: Props) {
  const now = useNow(5_000);
  const idle = useIdle();
  const [stopping, setStopping] = useState<SessionView | null>(null);
  const { notify } = useToasts();

  const active = (sessions ?? []).filter((s) => !isFinished(s));
  const recent = (sessions ?? [])
    .filter(isFinished)
    .sort((a, b) => (b.endedAt ?? b.createdAt) - (a.endedAt ?? a.createdAt))
    .slice(0, RECENT_MAX);

  const stop = async (s: SessionView) => {
    setStopping(null);
    try {
      const r = await del<{ session: SessionView }>(`/api/sessions/${encodeURIComponent(s.id)}`);
      onChanged(r.session);
    } catch (e) {
      notify({
        tone: 'bad',
        title: `${sessionTitle(s)} could not be stopped`,
        message: sentence(e instanceof ApiError || e instanceof Error ? e.message : String(e)),
      });
    }
  };

  return (
    <Card
      titleId="my-sessions-title"
      title="My sessions"
      aside={active.length > 0 && <span className="muted">{active.length} active</span>}
    >
      <ListState what="Your sessions" error={error} items={sessions && active}>
        No active sessions. Start one with the form below.
      </ListState>
      {active.length > 0 && (
        <DataTable
          className="sessions stack"
          labelledBy="my-sessions-title"
          columns={['Session', 'Cluster', 'State', 'Resources', 'Time left', ACTIONS]}
        >
          {active.map((s) => (
            <SessionRow
              key={s.id}
              s={s}
              now={now}
              clusterTitle={clusterTitle(s.cluster)}
              idle={idle.get(s.id)}
              onStop={() => setStopping(s)}
              onChanged={onChanged}
            />
          ))}
        </DataTable>
      )}
      {recent.length > 0 && (
        <details className="recent">
          <summary>Recent ({recent.length})</summary>
          <DataTable
            className="table-compact stack"
            caption="Recently ended sessions"
            columns={['Session', 'Cluster', 'State', 'Ended', 'Reason', ACTIONS]}
          >
            {recent.map((s) => {
              const badge = stateBadge(s.displayState);
              return (
                <tr key={s.id} data-session={s.id}>
                  <td>
                    <span className="strong">{sessionTitle(s)}</span>
                    {s.label && <span className="muted"> · {s.appName}</span>}
                  </td>
                  <td data-label="Cluster">{clusterTitle(s.cluster)}</td>
                  <td data-label="State">
                    <span className={`badge badge-${badge.tone}`}>{badge.label}</span>
                  </td>
                  <td data-label="Ended">{s.endedAt ? formatWhen(s.endedAt, now) : '—'}</td>
                  <td data-label="Reason">
                    {s.reason ?? ''}{' '}
                    <a
                      className="session-log"
                      href={`/api/sessions/${s.id}/log`}
                      target="_blank"
                      rel="noopener"
                      aria-label={`Log of ${sessionTitle(s)}`}
                    >
                      log
                    </a>
                  </td>
                  <td className="actions">
                    <RowButton label={`Launch ${sessionTitle(s)} again`} onClick={() => onLaunchAgain(s)}>
                      Launch again
                    </RowButton>
                  </td>
                </tr>
              );
            })}
          </DataTable>
        </details>
      )}
      {stopping && (
        <StopSessionDialog
          title={`Stop ${sessionTitle(stopping)}?`}
          onStop={() => void stop(stopping)}
          onKeep={() => setStopping(null)}
        >
          The job is cancelled and {stopping.appName} ends. Anything not saved in it is lost; files you saved
          stay in your home directory.
        </StopSessionDialog>
      )}
    </Card>
  );
}

/** The question before a session is stopped, worded the same for its owner and for an administrator. */
export function StopSessionDialog({
  title,
  onStop,
  onKeep,
  children,
}: {
  title: string;
  onStop(): void;
  onKeep(): void;
  /** What stopping it loses. */
  children: ReactNode;
}) {
  return (
    <ConfirmDialog
      title={title}
      confirmLabel="Stop session"
      cancelLabel="Keep it running"
      danger
      onConfirm={onStop}
      onCancel={onKeep}
    >
      <p>{children}</p>
    </ConfirmDialog>
  );
}

interface RowProps {
  s: SessionView;
  now: number;
  clusterTitle: string;
  idle?: IdleStatus;
  onStop(): void;
  onChanged(s: SessionView): void;
}

function SessionRow({ s, now, clusterTitle, idle, onStop, onChanged }: RowProps) {
  const silent = notRespondingText(s);
  // Still running (its app may answer), but the user should know before connecting.
  const badge = silent ? { label: 'not responding', tone: 'warn' as const } : stateBadge(s.displayState);
  const title = sessionTitle(s);
  const running = s.state === 'running';
  const details: string[] = [];
  if (silent) details.push(silent);
  else if (s.displayState === 'unknown') details.push('the session is probably still running');
  else if (s.displayState === 'reconnecting')
    details.push("the session's agent is reconnecting to the gateway; the session goes on");
  else if (s.state === 'queued' || s.state === 'requested') details.push(...queueDetails(s, now));
  else if (s.state === 'starting') details.push(`waiting for ${s.appName} to answer`);
  else if (s.state === 'ending' && s.reason) details.push(s.reason);
  const idleNote = s.state === 'running' ? idleWarning(idle) : null;
  if (idleNote) details.push(idleNote);
  const left = s.expiresAt ? s.expiresAt - now : null;
  const busy = s.state === 'requested' || s.state === 'queued' || s.state === 'starting';
  const since = sessionSince(s, now);
  return (
    <tr data-session={s.id} data-state={s.displayState} data-not-responding={silent ? '' : undefined}>
      <td className="col-session">
        <span className="strong">{title}</span>
        <span className="sub">
          {s.label ? `${s.appName} · ` : ''}
          {s.jobId ? `job ${s.jobId}` : 'not submitted yet'}
          {' · '}
          <time dateTime={new Date(since.at).toISOString()} title={since.full}>
            {since.text}
          </time>
          {s.jobId && (
            <>
              {' · '}
              <a
                className="session-log"
                href={`/api/sessions/${s.id}/log`}
                target="_blank"
                rel="noopener"
                aria-label={`Log of ${title}`}
              >
                log
              </a>
            </>
          )}
        </span>
        {running && (s.apps?.length ?? 0) > 0 && (
          <span className="sub extras">
            also{' '}
            {s.apps.map((x, i) => (
              <span key={x.id}>
                {i > 0 ? ', ' : ''}
                <a href={x.openUrl} aria-label={`Open ${x.name} of ${title}`}>
                  {x.name}
                </a>
              </span>
            ))}
          </span>
        )}
      </td>
      <td data-label="Cluster">{clusterTitle}</td>
      <td data-label="State">
        <span className={`badge badge-${badge.tone}${busy ? ' badge-busy' : ''}`}>{badge.label}</span>
        {details.length > 0 && <span className="sub">{details.join(' · ')}</span>}
      </td>
      <td data-label="Resources">
        {formatResources(s)
          .split(' · ')
          .map((part, i) => (
            <span key={part} className="nowrap">
              {i > 0 ? ' · ' : ''}
              {part}
            </span>
          ))}
      </td>
      <td className="nowrap" data-label="Time left">
        {running && left !== null ? (
          <span className={timeLeftIsShort(left) ? 'timeleft timeleft-short' : 'timeleft'}>
            {formatTimeLeft(left)}
          </span>
        ) : (
          <span className="muted">—</span>
        )}
      </td>
      <td className="actions">
        {running ? (
          <a className="btn btn-primary btn-small" href={s.openUrl} aria-label={`Connect to ${title}`}>
            Connect
          </a>
        ) : (
          <button
            type="button"
            className="btn btn-primary btn-small"
            disabled
            aria-label={`Connect to ${title}`}
          >
            Connect
          </button>
        )}
        <DesktopLinkButton session={s} title={title} />
        <AddTimeButton<{ session: SessionView }>
          most={s.addTimeMinutes ?? null}
          title={title}
          url={`/api/sessions/${encodeURIComponent(s.id)}/extend`}
          onDone={(r) => onChanged(r.session)}
        />
        <RowButton danger label={`Stop ${title}`} disabled={s.state === 'ending'} onClick={onStop}>
          {s.state === 'ending' ? 'Stopping…' : 'Stop'}
        </RowButton>
      </td>
    </tr>
  );
}
