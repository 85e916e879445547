// Job history with efficiency over HTTP: the caller's own ended sessions and jobs (JSON or CSV) and the
// form's right-size hint, all from the database; the background sacct read is src/history/service.ts's.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { NotJson } from '../../api/common.ts';
import { HistoryQuery, HistoryReply, RightSizeQuery, RightSizeReply } from '../../api/history.ts';
import { HistoryError, HistoryService, historyFilter, UsageReader } from '../../history/service.ts';
import { HttpError, requireUser } from '../auth.ts';
import type { AppContext } from '../context.ts';
import type { Feature } from '../feature.ts';
import { spec } from '../route-spec.ts';

function filterOf(q: HistoryQuery) {
  try {
    return historyFilter(q);
  } catch (e) {
    if (e instanceof HistoryError) throw new HttpError(400, e.message, e.field);
    throw e;
  }
}

export const historyFeature: Feature = {
  name: 'history',
  register(fastify: FastifyInstance, ctx: AppContext) {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const svc = new HistoryService({ db: ctx.db, clusters: ctx.clusters, catalogue: ctx.cfg.appCatalogue });
    ctx.services.set('history', svc);
    const reader = new UsageReader({ db: ctx.db, log: ctx.log });
    for (const c of ctx.clusters.values()) reader.follow(c);

    app.get(
      '/api/history',
      spec(
        'Your ended sessions and batch jobs, newest end first, each with what it asked for against what accounting says it used',
        HistoryReply,
        { querystring: HistoryQuery },
      ),
      async (req): Promise<HistoryReply> => {
        const user = requireUser(req, 'sessions');
        return { entries: await svc.list(user, filterOf(req.query)) };
      },
    );

    app.get(
      '/api/history/export',
      spec('The same history as CSV (a download)', NotJson('text/csv', 'One row per session or job.'), {
        querystring: HistoryQuery,
      }),
      async (req, reply) => {
        const user = requireUser(req, 'sessions');
        const body = await svc.csv(user, filterOf(req.query));
        return reply
          .type('text/csv; charset=utf-8')
          .header('content-disposition', 'attachment; filename="atrium-history.csv"')
          .header('cache-control', 'no-store')
          .send(body);
      },
    );

    app.get(
      '/api/history/right-size',
      spec(
        "The new-session form's right-size hint: how much memory your newest sessions of the app used of what they asked",
        RightSizeReply,
        { querystring: RightSizeQuery },
      ),
      async (req): Promise<RightSizeReply> => {
        const user = requireUser(req, 'sessions');
        const c = ctx.clusters.get(req.query.cluster);
        if (!c?.userMayUse(user)) return { hint: null };
        return svc.rightSize(user, c.name, req.query.app);
      },
    );
  },
};
