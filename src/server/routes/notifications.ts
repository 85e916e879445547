import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { OkReply } from '../../api/common.ts';
import { MarkReadBody, NotificationPrefs, NotificationsReply, PrefsBody } from '../../api/notifications.ts';
import type { SessionRow } from '../../db/sessions.ts';
import { findUserById } from '../../db/users.ts';
import { NotificationService } from '../../notifications/service.ts';
import { sessionPrefix } from '../../proxy/routes.ts';
import { requireUser } from '../auth.ts';
import type { AppContext } from '../context.ts';
import type { Feature } from '../feature.ts';
import { spec } from '../route-spec.ts';

export function notificationService(ctx: AppContext): NotificationService {
  let s = ctx.services.get('notifications') as NotificationService | undefined;
  if (!s) {
    s = new NotificationService(ctx.db, ctx.bus);
    ctx.services.set('notifications', s);
  }
  return s;
}

/** Notifications for sessions (ready, ending soon, ended, failed) and the user's inbox and preferences. */
export const notificationsFeature: Feature = {
  name: 'notifications',
  register(fastify: FastifyInstance, ctx: AppContext) {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const svc = notificationService(ctx);
    const name = async (s: SessionRow) => (await findUserById(ctx.db, s.user_id))?.username ?? '';
    // Display names, as the page shows them ("Jupyter on This machine"), not ids.
    const what = (s: SessionRow) => {
      const app = ctx.cfg.appCatalogue.find((a) => a.id === s.app)?.name ?? s.app;
      const cluster = ctx.clusters.get(s.cluster)?.title ?? s.cluster;
      return `${s.label ? `"${s.label}" (${app})` : app} on ${cluster}`;
    };
    (ctx.services.get('session.onTransition') as ((s: SessionRow, to: string) => void)[]).push((s, to) => {
      void (async () => {
        const link = sessionPrefix(await name(s), s.id);
        if (to === 'running')
          await svc.notify(
            s.user_id,
            'session.ready',
            'Session ready',
            `Your session ${what(s)} is ready.`,
            link,
          );
        else if (to === 'ended')
          await svc.notify(
            s.user_id,
            'session.ended',
            'Session ended',
            `Your session ${what(s)} ended: ${s.reason ?? ''}.`,
            null,
          );
        else if (to === 'failed')
          await svc.notify(
            s.user_id,
            'session.failed',
            'Session failed',
            `Your session ${what(s)} failed: ${s.reason ?? ''}.`,
            null,
          );
      })().catch((e) => ctx.log.error({ err: e }, 'notification failed'));
    });
    (ctx.services.get('session.onWarning') as ((s: SessionRow, minutes: number) => void)[]).push(
      (s, minutes) => {
        void (async () => {
          await svc.notify(
            s.user_id,
            'session.ending_soon',
            'Session ending soon',
            `Your session ${what(s)} reaches its time limit in ${minutes} min. Save your work.`,
            sessionPrefix(await name(s), s.id),
          );
        })().catch((e) => ctx.log.error({ err: e }, 'notification failed'));
      },
    );

    app.get(
      '/api/notifications',
      spec('Your latest notifications, and your preferences', NotificationsReply),
      async (req): Promise<NotificationsReply> => {
        const user = requireUser(req, 'read');
        return { notifications: await svc.list(user.id), prefs: await svc.prefs(user.id) };
      },
    );
    app.post(
      '/api/notifications/read',
      spec('Mark notifications read (all of them when `ids` is left out)', OkReply, { body: MarkReadBody }),
      async (req): Promise<OkReply> => {
        const user = requireUser(req);
        const ids = req.body?.ids;
        await svc.markRead(
          user.id,
          Array.isArray(ids) ? ids.filter((i): i is number => Number.isInteger(i)) : 'all',
        );
        return { ok: true };
      },
    );
    app.get(
      '/api/notifications/prefs',
      spec('Which notifications you want, and how', NotificationPrefs),
      async (req): Promise<NotificationPrefs> => svc.prefs(requireUser(req, 'read').id),
    );
    app.put(
      '/api/notifications/prefs',
      spec('Change some preferences (kinds not named keep theirs); answers all of them', NotificationPrefs, {
        body: PrefsBody,
      }),
      async (req): Promise<NotificationPrefs> => {
        const user = requireUser(req);
        return svc.setPrefs(user.id, req.body);
      },
    );
  },
};
