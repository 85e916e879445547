// Saved settings of the new-session form over HTTP: the caller's presets and last-used values, their own
// presets changed under /api/presets, the site's under /api/admin/presets (administrators only, by the
// route policy of /api/admin/). Another user's preset is "no such preset", whatever is tried.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { OkReply } from '../../api/common.ts';
import {
  NewPresetBody,
  PresetParams,
  PresetPatchBody,
  PresetReply,
  PresetsReply,
} from '../../api/presets.ts';
import { PresetError, type PresetScope, PresetService } from '../../presets/service.ts';
import { clientIp, requireAdmin, requireUser } from '../auth.ts';
import type { AppContext } from '../context.ts';
import type { Feature } from '../feature.ts';
import { spec } from '../route-spec.ts';

function refuse(reply: FastifyReply, e: unknown): FastifyReply {
  if (!(e instanceof PresetError)) throw e;
  return reply
    .code(e.status)
    .send({ error: e.message, field: e.field, ...(e.errors.length > 0 ? { errors: e.errors } : {}) });
}

export const presetsFeature: Feature = {
  name: 'presets',
  register(fastify: FastifyInstance, ctx: AppContext) {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const svc = new PresetService({
      db: ctx.db,
      clusters: ctx.clusters,
      catalogue: ctx.cfg.appCatalogue,
      environments: ctx.cfg.environments,
      audit: ctx.audit,
    });
    ctx.services.set('presets', svc);

    app.get(
      '/api/presets',
      spec("Your presets and the site's for the new-session form, and your last-used values", PresetsReply),
      async (req): Promise<PresetsReply> => svc.list(requireUser(req, 'sessions')),
    );

    // The same three writes for both owners: the caller's own presets, or (admins) the site's.
    const writes = (base: string, scope: PresetScope, summaries: [string, string, string]) => {
      const who =
        scope === 'site'
          ? requireAdmin
          : (req: Parameters<typeof requireUser>[0]) => requireUser(req, 'sessions');
      app.post(base, spec(summaries[0], PresetReply, { body: NewPresetBody }, 201), async (req, reply) => {
        try {
          const preset = await svc.create(who(req), scope, req.body, clientIp(req));
          return reply.code(201).send({ preset } satisfies PresetReply);
        } catch (e) {
          return refuse(reply, e);
        }
      });
      app.patch(
        `${base}/:id`,
        spec(summaries[1], PresetReply, { params: PresetParams, body: PresetPatchBody }),
        async (req, reply) => {
          try {
            const preset = await svc.update(who(req), scope, req.params.id, req.body, clientIp(req));
            return reply.send({ preset } satisfies PresetReply);
          } catch (e) {
            return refuse(reply, e);
          }
        },
      );
      app.delete(`${base}/:id`, spec(summaries[2], OkReply, { params: PresetParams }), async (req, reply) => {
        try {
          await svc.remove(who(req), scope, req.params.id, clientIp(req));
          return reply.send({ ok: true } satisfies OkReply);
        } catch (e) {
          return refuse(reply, e);
        }
      });
    };
    writes('/api/presets', 'own', [
      'Save a preset of the new-session form',
      'Rename one of your presets, change its values, or make it your default on its cluster',
      'Delete one of your presets',
    ]);
    writes('/api/admin/presets', 'site', [
      'Save a site preset: every user of its cluster sees it, read-only',
      'Rename a site preset or change its values',
      'Delete a site preset',
    ]);
  },
};
