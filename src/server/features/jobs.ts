// Batch jobs, the queue and the cluster status as one feature module: the JobsService (fed by the
// shared poll), its API routes, and scheduler counters for /metrics.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Gauge } from 'prom-client';
import { ClusterParams, ClusterStatus } from '../../api/clusters.ts';
import {
  BatchClustersReply,
  JobDetailReply,
  JobOutputPage,
  JobOutputQuery,
  JobParams,
  JobReply,
  JobsQuery,
  JobsReply,
  NewJobBody,
  QueueQuery,
  QueueView,
} from '../../api/jobs.ts';
import { DEFAULT_PAGE_BYTES } from '../../jobs/output.ts';
import { STATE_FILTERS, type StateFilter } from '../../jobs/queue.ts';
import { JobsHttpError, JobsService } from '../../jobs/service.ts';
import type { ExecRunner } from '../../scheduler/slurm/runner.ts';
import { RequestError } from '../../sessions/service.ts';
import { clientIp, HttpError, requireUser } from '../auth.ts';
import type { AppContext } from '../context.ts';
import type { Feature } from '../feature.ts';
import { spec } from '../route-spec.ts';
import { notificationService } from '../routes/notifications.ts';

export function jobsService(ctx: AppContext): JobsService | undefined {
  return ctx.services.get('jobs') as JobsService | undefined;
}

function q(req: FastifyRequest): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries((req.query ?? {}) as Record<string, unknown>)) {
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}

function stateFilter(v: string | undefined): StateFilter | undefined {
  if (v === undefined || v === '') return undefined;
  if (!STATE_FILTERS.includes(v))
    throw new HttpError(400, `unknown state filter "${v.slice(0, 20)}"`, 'state');
  return v as StateFilter;
}

function intParam(v: string | undefined, dflt: number, field: string): number {
  if (v === undefined || v === '') return dflt;
  if (!/^-?\d{1,15}$/.test(v)) throw new HttpError(400, `${field} must be a whole number`, field);
  return Number(v);
}

function rethrow(e: unknown, reply: FastifyReply): FastifyReply {
  if (e instanceof RequestError)
    return reply.code(e.status).send({ error: e.message, errors: e.errors, field: e.errors[0]?.field });
  if (e instanceof JobsHttpError) return reply.code(e.status).send({ error: e.message });
  throw e;
}

/** Scheduler counters: polls per cluster and commands by name (every cause: polls, submits, lookups). */
function registerCounters(ctx: AppContext): void {
  const reg = ctx.metrics.registry;
  const clusters = () => [...ctx.clusters.values()];
  if (!reg.getSingleMetric('atrium_scheduler_polls_total')) {
    new Gauge({
      name: 'atrium_scheduler_polls_total',
      help: 'Polls of the scheduler (one per cluster and interval, shared by every page and user)',
      labelNames: ['cluster'] as const,
      registers: [reg],
      collect() {
        for (const c of clusters()) this.set({ cluster: c.name }, c.poller.pollCount);
      },
    });
  }
  if (!reg.getSingleMetric('atrium_scheduler_commands_total')) {
    const commands = ['squeue', 'sinfo', 'sbatch', 'scancel', 'sacct', 'scontrol', 'sacctmgr'];
    new Gauge({
      name: 'atrium_scheduler_commands_total',
      help: 'Scheduler commands run, by command',
      labelNames: ['cluster', 'command'] as const,
      registers: [reg],
      collect() {
        for (const c of clusters()) {
          const runner = (c.adapter as { runner?: ExecRunner }).runner;
          if (!runner || typeof runner.callsOf !== 'function') continue;
          for (const cmd of commands) this.set({ cluster: c.name, command: cmd }, runner.callsOf(cmd));
        }
      },
    });
  }
}

export const jobsFeature: Feature = {
  name: 'jobs',
  register(fastify: FastifyInstance, ctx: AppContext) {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const svc = new JobsService({
      db: ctx.db,
      cfg: ctx.cfg,
      clusters: ctx.clusters,
      bus: ctx.bus,
      log: ctx.log.child({ part: 'jobs' }),
      audit: ctx.audit,
      notifications: notificationService(ctx),
      sessions: ctx.sessions,
    });
    ctx.services.set('jobs', svc);
    registerCounters(ctx);

    const owned = async (req: FastifyRequest, { cluster, jobId }: JobParams) => {
      const user = requireUser(req, 'jobs');
      const row = await svc.getOwned(user, cluster, jobId);
      if (!row) throw new HttpError(404, 'no such job');
      return { user, row };
    };

    app.get(
      '/api/jobs',
      spec('Your batch jobs, newest first (`state`: active, finished, all or one state)', JobsReply, {
        querystring: JobsQuery,
      }),
      async (req): Promise<JobsReply> => {
        const user = requireUser(req, 'jobs');
        const p = q(req);
        return {
          jobs: await svc.listFor(user, {
            ...(p.cluster ? { cluster: p.cluster } : {}),
            ...(p.state ? { state: stateFilter(p.state)! } : {}),
            limit: intParam(p.limit, 200, 'limit'),
          }),
        };
      },
    );

    app.get(
      '/api/jobs/clusters',
      spec('The clusters you may submit to, with what the submit form offers', BatchClustersReply),
      async (req): Promise<BatchClustersReply> => {
        const user = requireUser(req, 'jobs');
        return { clusters: await svc.batchClusters(user) };
      },
    );

    app.post(
      '/api/jobs',
      spec(
        'Submit a batch job: a script on the cluster (`scriptPath`) or pasted (`script`)',
        JobReply,
        { body: NewJobBody },
        201,
      ),
      async (req, reply) => {
        const user = requireUser(req, 'jobs');
        const cluster = req.body.cluster ?? '';
        const refused = ctx.networks.clusterRefusal(cluster, clientIp(req), ctx.clusters.get(cluster)?.title);
        if (refused) throw new HttpError(403, refused, 'cluster');
        try {
          return reply
            .code(201)
            .send({ job: await svc.submit(user, req.body, clientIp(req)) } satisfies JobReply);
        } catch (e) {
          return rethrow(e, reply);
        }
      },
    );

    app.get(
      '/api/jobs/:cluster/:jobId',
      spec('One of your jobs, with links to its working directory', JobDetailReply, { params: JobParams }),
      async (req): Promise<JobDetailReply> => {
        const { user, row } = await owned(req, req.params);
        return { job: await svc.detail(user, row) };
      },
    );

    const cancel = async (
      req: FastifyRequest<{ Params: JobParams }>,
      reply: FastifyReply,
    ): Promise<JobReply> => {
      const { user, row } = await owned(req, req.params);
      try {
        return { job: await svc.cancel(user, row, clientIp(req)) };
      } catch (e) {
        return rethrow(e, reply);
      }
    };
    const cancelling = (summary: string) => spec(summary, JobReply, { params: JobParams });
    app.delete('/api/jobs/:cluster/:jobId', cancelling('Cancel one of your jobs'), cancel);
    app.post(
      '/api/jobs/:cluster/:jobId/cancel',
      cancelling('Cancel one of your jobs (the same as DELETE, for plain forms)'),
      cancel,
    );

    app.get(
      '/api/jobs/:cluster/:jobId/output',
      spec("A page of the job's stdout or stderr, from an offset or from the end", JobOutputPage, {
        params: JobParams,
        querystring: JobOutputQuery,
      }),
      async (req, reply): Promise<JobOutputPage> => {
        const { user, row } = await owned(req, req.params);
        const p = q(req);
        const stream = p.stream ?? 'stdout';
        if (stream !== 'stdout' && stream !== 'stderr')
          throw new HttpError(400, 'stream must be stdout or stderr', 'stream');
        const fromEnd = p.from === 'end';
        try {
          return await svc.output(user, row, stream, {
            offset: fromEnd ? -1 : Math.max(0, intParam(p.offset, 0, 'offset')),
            limit: intParam(p.limit, DEFAULT_PAGE_BYTES, 'limit'),
            fromEnd,
          });
        } catch (e) {
          return rethrow(e, reply);
        }
      },
    );

    app.get(
      '/api/queue',
      spec(
        "A cluster's queue as of the last poll, filtered (your own jobs only where the site hides others')",
        QueueView,
        { querystring: QueueQuery },
      ),
      async (req, reply): Promise<QueueView> => {
        const user = requireUser(req, 'read');
        const p = q(req);
        const cluster = p.cluster ?? [...ctx.clusters.values()].find((c) => c.userMayUse(user))?.name ?? '';
        try {
          return await svc.queue(user, cluster, {
            ...(p.partition ? { partition: p.partition } : {}),
            ...(p.state ? { state: stateFilter(p.state)! } : {}),
            ...(p.user ? { user: p.user } : {}),
            ...(p.mine === '1' || p.mine === 'true' ? { mine: true } : {}),
            limit: intParam(p.limit, 500, 'limit'),
          });
        } catch (e) {
          return rethrow(e, reply);
        }
      },
    );

    app.get(
      '/api/clusters/:name/status',
      spec("A cluster's nodes and partitions and their load, as of the last poll", ClusterStatus, {
        params: ClusterParams,
      }),
      async (req, reply): Promise<ClusterStatus> => {
        const user = requireUser(req, 'read');
        try {
          return await svc.status(user, req.params.name);
        } catch (e) {
          return rethrow(e, reply);
        }
      },
    );
  },
};
