import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { ClusterParams, ClustersReply, FreeTable } from '../../api/clusters.ts';
import { accessRefusal } from '../../core/project-access.ts';
import { requireUser } from '../auth.ts';
import type { AppContext } from '../context.ts';
import { spec } from '../route-spec.ts';

/** What the new-session form offers this user, per cluster, with the live free-resources table. */
export function registerClusterRoutes(fastify: FastifyInstance, ctx: AppContext): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    '/api/clusters',
    spec(
      'The clusters you may use: what the new-session form offers on each, and what is free now',
      ClustersReply,
    ),
    async (req): Promise<ClustersReply> => {
      const user = requireUser(req, 'read');
      const out: ClustersReply['clusters'] = [];
      for (const c of ctx.clusters.values()) {
        if (!(await c.mayUse(user))) continue;
        const limits = await c.limitsFor(user, ctx.cfg.appCatalogue, ctx.cfg.environments);
        out.push({
          name: c.name,
          title: c.title,
          backend: c.cfg.backend,
          drained: c.drained,
          reachable: c.poller.reachable,
          defaultHours: Math.min(c.cfg.defaultHours, c.cfg.maxHours),
          limits,
          defaultPartition: c.cfg.slurm?.partition ?? null,
          apps: c.appsFor(ctx.cfg.appCatalogue).map((a) => {
            // available:false: the form shows "not installed" (with what is missing) and submits nothing.
            const missing = c.missingFor(a);
            return {
              id: a.id,
              name: a.name,
              description: a.description,
              icon: a.icon ?? null,
              available: missing.length === 0,
              missing,
              extra: a.extra !== false,
            };
          }),
          environments: c
            .environmentsFor(ctx.cfg.environments)
            .map((e) => ({ id: e.id, name: e.name, description: e.description })),
          free: c.freeTable(),
          ...accessRefusal(await c.projectAccess(user)),
        });
      }
      return { clusters: out };
    },
  );

  app.get(
    '/api/clusters/:name/free',
    spec("The cluster's free resources as of the last poll", FreeTable, { params: ClusterParams }),
    async (req, reply) => {
      requireUser(req, 'read');
      const c = ctx.clusters.get(req.params.name);
      if (!c || !(await c.mayUse(req.user!))) return reply.code(404).send({ error: 'no such cluster' });
      return c.freeTable();
    },
  );
}
