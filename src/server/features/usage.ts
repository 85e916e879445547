// Usage and quotas over HTTP: GET /api/usage answers from the usage service's copy (src/quotas/service.ts),
// which reads each cluster's sshare and the users' storage quota commands in the background.
import type { FastifyInstance } from 'fastify';
import { UsageReply } from '../../api/usage.ts';
import { UsageService } from '../../quotas/service.ts';
import { requireUser } from '../auth.ts';
import type { AppContext } from '../context.ts';
import type { Feature } from '../feature.ts';
import { spec } from '../route-spec.ts';

function usageService(ctx: AppContext): UsageService | undefined {
  return ctx.services.get('usage') as UsageService | undefined;
}

export const usageFeature: Feature = {
  name: 'usage',
  register(app: FastifyInstance, ctx: AppContext) {
    const svc = new UsageService({
      cfg: ctx.cfg.usage,
      filesRunAs: ctx.cfg.files.runAs,
      clusters: () => ctx.clusters.values(),
      log: ctx.log.child({ part: 'usage' }),
    });
    ctx.services.set('usage', svc);
    app.get(
      '/api/usage',
      spec(
        "Your accounts' CPU time against their limits, your fair share and your storage quotas (read in the background, never per request)",
        UsageReply,
      ),
      async (req): Promise<UsageReply> => svc.forUser(requireUser(req, 'read')),
    );
  },
  start(ctx: AppContext) {
    usageService(ctx)?.start();
  },
  stop(ctx: AppContext) {
    usageService(ctx)?.stop();
  },
};
