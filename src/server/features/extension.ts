// Walltime extension ("add time"): the owner of a running session or batch job asks for more minutes;
// the site's policy (`clusters[].extension`, src/core/extension.ts) and the reservations the scheduler
// lists now decide; the gateway sets the new limit itself as the scheduler's operator (the adapter's
// setTimeLimit: `scontrol update`, argv only), and the session or job shows the new end at once, the
// session's time-left warning falling due again before it. Every grant and every refusal is audited.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TSchema } from 'typebox';
import { ExtendBody } from '../../api/extension.ts';
import { JobParams, JobReply } from '../../api/jobs.ts';
import { SessionParams, SessionReply } from '../../api/sessions.ts';
import { decideExtension, type ExtensionDecision, type ExtensionJob } from '../../core/extension.ts';
import { jobById } from '../../core/resources.ts';
import type { User } from '../../db/users.ts';
import type { JobsService } from '../../jobs/service.ts';
import { expandHostlist } from '../../scheduler/slurm/parse.ts';
import type { JobInfo, ReservationInfo } from '../../scheduler/types.ts';
import type { Cluster } from '../../sessions/clusters.ts';
import { sessionPartition } from '../../sessions/states.ts';
import { clientIp, HttpError, requireUser } from '../auth.ts';
import type { AppContext } from '../context.ts';
import type { Feature } from '../feature.ts';

const SESSION_ID = /^[a-z0-9]{4,32}$/;

/** The HTTP status of each kind of refusal. */
const STATUS: Record<Exclude<ExtensionDecision, { ok: true }>['kind'], number> = {
  input: 400,
  state: 409,
  policy: 403,
  reservation: 409,
};

export const extensionFeature: Feature = {
  name: 'extension',
  register(fastify: FastifyInstance, ctx: AppContext) {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    /**
     * Sessions and jobs being extended now: a second request at the same time is refused rather than
     * decided on the limit the first is about to change.
     */
    const busy = new Set<string>();
    const oneAtATime = async <T>(key: string, f: () => Promise<T>): Promise<T> => {
      if (busy.has(key)) throw new HttpError(409, 'another request to add time to this is under way');
      busy.add(key);
      try {
        return await f();
      } finally {
        busy.delete(key);
      }
    };

    const audit = (
      req: FastifyRequest,
      user: User,
      action: 'session.extend' | 'job.extend',
      target: string,
      ok: boolean,
      details: Record<string, unknown>,
    ) =>
      ctx.audit
        .record({
          actorUserId: user.id,
          actor: user.username,
          action,
          target,
          ip: clientIp(req),
          ok,
          details,
        })
        .catch((e: Error) => ctx.log.warn({ err: e.message }, 'extension: audit entry not written'));

    /**
     * Decides, and on a grant sets the scheduler's limit; throws the refusal (audited) as an HttpError.
     * `job`: the scheduler's job as the latest poll sees it (undefined when it is not there).
     */
    const extend = async (
      req: FastifyRequest,
      user: User,
      a: {
        action: 'session.extend' | 'job.extend';
        target: string;
        cluster: Cluster | undefined;
        jobId: string | null;
        running: boolean;
        job: JobInfo | undefined;
        startedAt: number | null;
        limitMinutes: number | null;
        partition: string | undefined;
      },
    ): Promise<{ newLimitMinutes: number; newEnd: number; minutes: number }> => {
      const minutes = (req.body as ExtendBody).minutes;
      const refuse = async (status: number, reason: string, field?: string): Promise<never> => {
        await audit(req, user, a.action, a.target, false, { minutes, reason });
        throw new HttpError(status, reason, field);
      };
      const running = a.running && a.job?.state === 'running' && a.jobId !== null;
      const limit = Math.max(a.job?.timeLimitMinutes ?? 0, a.limitMinutes ?? 0);
      const startedAt = a.job?.startTime ? a.job.startTime * 1000 : a.startedAt;
      const job: ExtensionJob = {
        running: running && startedAt !== null && limit > 0,
        startedAt: startedAt ?? 0,
        timeLimitMinutes: limit,
        nodes: expandHostlist(a.job?.nodes),
        ...((a.job?.partition ?? a.partition) ? { partition: a.job?.partition ?? a.partition } : {}),
        ...(a.job?.reservation ? { reservation: a.job.reservation } : {}),
      };
      const adapter = a.cluster?.adapter;
      // The amount and the state first: neither needs the scheduler.
      const first = decideExtension({
        minutes,
        job,
        policy: a.cluster?.cfg.extension,
        reservations: [],
        now: Date.now(),
      });
      if (!first.ok && (first.kind === 'input' || first.kind === 'state'))
        return refuse(STATUS[first.kind], first.reason, first.field);
      if (!adapter?.setTimeLimit)
        return refuse(
          409,
          `the ${adapter?.kind ?? 'unknown'} backend cannot change a running job's time limit`,
        );
      if (!first.ok) return refuse(STATUS[first.kind], first.reason, first.field);
      let reservations: ReservationInfo[];
      try {
        // From the scheduler now, never the cluster's cached copy (kept when a refresh fails): a
        // maintenance window made a minute ago counts, and an unreadable list refuses rather than grants.
        reservations = adapter.reservations
          ? await adapter.reservations()
          : (await adapter.clusterInfo()).reservations;
      } catch (e) {
        return refuse(503, `cannot read the scheduler's reservations: ${(e as Error).message}`);
      }
      const d = decideExtension({
        minutes,
        job,
        policy: a.cluster!.cfg.extension,
        reservations,
        now: Date.now(),
      });
      if (!d.ok) return refuse(STATUS[d.kind], d.reason, d.field);
      try {
        await adapter.setTimeLimit(a.jobId!, d.newLimitMinutes);
      } catch (e) {
        return refuse(502, `the scheduler refused the new time limit: ${(e as Error).message}`);
      }
      await audit(req, user, a.action, a.target, true, {
        minutes,
        jobId: a.jobId,
        timeLimitMinutes: d.newLimitMinutes,
        endsAt: d.newEnd,
      });
      return { newLimitMinutes: d.newLimitMinutes, newEnd: d.newEnd, minutes: minutes as number };
    };

    const route = <P extends TSchema, R extends TSchema>(what: string, params: P, reply: R) => ({
      schema: {
        summary: `Add time to your running ${what}, within the site's policy and before any reservation or maintenance window ahead`,
        params,
        body: ExtendBody,
        reply: { 200: reply },
      },
    });
    const sessionRoute = route('session', SessionParams, SessionReply);
    app.post('/api/sessions/:id/extend', sessionRoute, async (req): Promise<SessionReply> => {
      const user = requireUser(req, 'sessions');
      const { id } = req.params;
      // Ownership before the lock: another user's session answers 404 even while its owner extends it.
      const owned = SESSION_ID.test(id) ? await ctx.sessions.getOwned(user, id) : undefined;
      if (!owned) {
        // Another user's session or none: the same 404 either way, and the attempt is on record.
        await audit(req, user, 'session.extend', id.slice(0, 64), false, {
          minutes: req.body.minutes,
          reason: 'no such session',
        });
        throw new HttpError(404, 'no such session');
      }
      return oneAtATime(`session/${id}`, async () => {
        // Again inside the lock: a request that just finished may have changed the limit.
        const row = (await ctx.sessions.getOwned(user, id)) ?? owned;
        const cluster = ctx.clusters.get(row.cluster);
        const snap = cluster?.poller.latestGood ?? null;
        const job = row.job_id && snap ? jobById(snap.jobs, row.job_id) : undefined;
        const granted = await extend(req, user, {
          action: 'session.extend',
          target: row.id,
          cluster,
          jobId: row.job_id,
          running: row.state === 'running',
          job,
          startedAt: row.started_at,
          limitMinutes: row.time_limit_min,
          partition: sessionPartition(row, JSON.parse(row.request)),
        });
        const session = await ctx.sessions.timeExtended(
          row,
          granted.newLimitMinutes,
          granted.newEnd,
          `${granted.minutes} min added by ${user.username}: time limit ${granted.newLimitMinutes} min`,
        );
        return { session };
      });
    });

    const jobs = ctx.services.get('jobs') as JobsService | undefined;
    if (!jobs) return;
    const jobRoute = route('batch job', JobParams, JobReply);
    app.post('/api/jobs/:cluster/:jobId/extend', jobRoute, async (req): Promise<JobReply> => {
      const user = requireUser(req, 'jobs');
      const { cluster: name, jobId } = req.params;
      const target = `${name.slice(0, 64)}/${jobId.slice(0, 64)}`;
      // Ownership before the lock: another user's job answers 404 even while its owner extends it.
      const owned = await jobs.getOwned(user, name, jobId);
      if (!owned) {
        await audit(req, user, 'job.extend', target, false, {
          minutes: req.body.minutes,
          reason: 'no such job',
        });
        throw new HttpError(404, 'no such job');
      }
      return oneAtATime(`job/${name}/${jobId}`, async () => {
        // Again inside the lock: a request that just finished may have changed the limit.
        const row = (await jobs.getOwned(user, name, jobId)) ?? owned;
        const cluster = ctx.clusters.get(row.cluster);
        const snap = cluster?.poller.latestGood ?? null;
        const granted = await extend(req, user, {
          action: 'job.extend',
          target,
          cluster,
          jobId: row.job_id,
          running: row.state === 'running',
          job: snap ? jobById(snap.jobs, row.job_id) : undefined,
          startedAt: row.started_at,
          limitMinutes: row.time_limit_min,
          partition: row.partition ?? undefined,
        });
        return { job: await jobs.timeExtended(row, granted.newLimitMinutes) };
      });
    });
  },
};
