// Pages the proxy shows at a session's address while it has no route: progress while it starts,
// the reason once it has ended. They refresh themselves, so a bookmarked session just opens when ready.
import type http from 'node:http';
import { sessionEvents } from '../db/sessions.ts';
import { escapeHtml, type ProxyUser, sendPage } from '../proxy/proxy.ts';
import type { AppContext } from './context.ts';

function when(ms: number | undefined): string {
  if (!ms) return '';
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
}

export function placeholderHandler(ctx: () => AppContext) {
  return async (
    sessionId: string,
    user: ProxyUser,
    _req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<boolean> => {
    const c = ctx();
    const row = await c.sessions.getOwned({ id: user.id } as never, sessionId);
    if (!row) return false;
    const view = await c.sessions.view(row);
    const events = await sessionEvents(c.db, sessionId);
    const steps = `<ol class="steps">${events
      .map((e) => `<li><span class="t">${escapeHtml(when(e.at))}</span> ${escapeHtml(e.message)}</li>`)
      .join('')}</ol>`;
    if (view.state === 'ended' || view.state === 'failed') {
      sendPage(
        res,
        410,
        `This session has ${view.state === 'failed' ? 'failed' : 'ended'}`,
        `Reason: ${view.reason ?? 'unknown'}.`,
        {
          bodyHtml: steps,
        },
      );
      return true;
    }
    let title = `Starting ${view.appName}`;
    let message = 'Your session is being prepared.';
    if (view.displayState === 'unknown') {
      title = 'The scheduler cannot be reached';
      message = 'Your session is probably still running; this page retries by itself.';
    } else if (view.state === 'requested' || view.state === 'queued') {
      title = 'Waiting in the queue';
      const q = view.queue;
      const parts = [];
      if (q?.reason && q.reason !== 'None') parts.push(`pending reason: ${q.reason}`);
      if (q?.position)
        parts.push(
          `position ${q.position} of ${q.pendingInPartition ?? '?'} pending in ${q.partition ?? 'the partition'}`,
        );
      if (q?.expectedStart) parts.push(`expected start ${when(q.expectedStart * 1000)}`);
      message =
        parts.length > 0 ? `Your job is waiting (${parts.join('; ')}).` : 'Your job has been submitted.';
    } else if (view.state === 'starting') {
      message = `The job is running${view.jobId ? ` (job ${view.jobId})` : ''}; waiting for ${view.appName} to answer.`;
    } else if (view.state === 'running' && view.notRespondingSince) {
      title = 'The session is not responding';
      message = `Not responding since ${when(view.notRespondingSince)}: its agent has stopped reporting. The node may have failed; the session ends by itself if the scheduler says so.`;
    } else if (view.state === 'running') {
      title = 'Connecting';
      message = 'The session is running; connecting to it.';
    } else if (view.state === 'ending') {
      title = 'Stopping';
      message = `The session is stopping: ${view.reason ?? ''}.`;
    }
    res.setHeader('retry-after', '2');
    sendPage(res, 503, title, message, { refreshSeconds: 2, bodyHtml: steps });
    return true;
  };
}
