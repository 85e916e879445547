// API tokens a user creates to drive the API from scripts. The token is shown once, stored as its
// hash, limited to scopes, expires, and can be revoked. Only a signed-in browser creates tokens (a
// stolen token cannot mint more); a token may revoke itself.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { Selectable } from 'kysely';
import { OkReply } from '../../api/common.ts';
import { NewTokenBody, NewTokenReply, TokenParams, TokensReply, type TokenView } from '../../api/tokens.ts';
import { hashToken } from '../../auth/secrets.ts';
import { MAX_ACTIVE_TOKENS, newApiToken, parseTokenRequest } from '../../auth/tokens.ts';
import type { ApiTokensTable } from '../../db/schema.ts';
import { clientIp, HttpError, requireBrowser, requireUser } from '../auth.ts';
import type { AppContext } from '../context.ts';
import { spec } from '../route-spec.ts';

type TokenRow = Selectable<ApiTokensTable>;

function view(r: TokenRow): TokenView {
  return {
    id: r.id,
    name: r.name,
    scopes: JSON.parse(r.scopes) as string[],
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
  };
}

export function registerTokenRoutes(fastify: FastifyInstance, ctx: AppContext): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    '/api/tokens',
    spec('Your API tokens, newest first', TokensReply),
    async (req): Promise<TokensReply> => {
      const user = requireUser(req);
      const rows = await ctx.db
        .selectFrom('api_tokens')
        .selectAll()
        .where('user_id', '=', user.id)
        .orderBy('id', 'desc')
        .execute();
      return { tokens: rows.map(view) };
    },
  );

  app.post(
    '/api/tokens',
    spec(
      'Create an API token (from a signed-in browser only); the token is in this reply only',
      NewTokenReply,
      { body: NewTokenBody },
      201,
    ),
    async (req, reply) => {
      const user = requireBrowser(req);
      const parsed = parseTokenRequest(req.body, ctx.cfg.auth.apiTokenMaxDays);
      if (!parsed.ok) return reply.code(400).send({ error: parsed.error, field: parsed.field });
      const now = Date.now();
      const active = await ctx.db
        .selectFrom('api_tokens')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('user_id', '=', user.id)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirstOrThrow();
      if (Number(active.n) >= MAX_ACTIVE_TOKENS) {
        return reply
          .code(409)
          .send({ error: `you have ${MAX_ACTIVE_TOKENS} active tokens; revoke one first`, field: 'name' });
      }
      const token = newApiToken();
      const row = await ctx.db
        .insertInto('api_tokens')
        .values({
          user_id: user.id,
          name: parsed.value.name,
          token_hash: hashToken(token),
          scopes: JSON.stringify(parsed.value.scopes),
          created_at: now,
          expires_at: parsed.value.expiresAt,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await ctx.audit.record({
        actorUserId: user.id,
        actor: user.username,
        action: 'token.create',
        target: String(row.id),
        ip: clientIp(req),
        ok: true,
        details: { name: row.name, scopes: parsed.value.scopes, expiresAt: row.expires_at },
      });
      // The only time the token is ever shown.
      return reply.code(201).send({ token, info: view(row) } satisfies NewTokenReply);
    },
  );

  app.delete(
    '/api/tokens/:id',
    spec('Revoke an API token (a token may revoke itself)', OkReply, { params: TokenParams }),
    async (req): Promise<OkReply> => {
      const user = requireUser(req);
      const id = Number(req.params.id);
      const row = Number.isSafeInteger(id)
        ? await ctx.db
            .selectFrom('api_tokens')
            .selectAll()
            .where('id', '=', id)
            .where('user_id', '=', user.id)
            .executeTakeFirst()
        : undefined;
      if (!row) throw new HttpError(404, 'no such token');
      // A token may revoke itself, but not the user's other tokens.
      const self = req.headers.authorization?.startsWith('Bearer ')
        ? hashToken(req.headers.authorization.slice(7).trim()) === row.token_hash
        : false;
      if (req.tokenScopes && !self) throw new HttpError(403, 'an API token may revoke only itself');
      if (!row.revoked_at) {
        await ctx.db
          .updateTable('api_tokens')
          .set({ revoked_at: Date.now() })
          .where('id', '=', row.id)
          .execute();
        await ctx.audit.record({
          actorUserId: user.id,
          actor: user.username,
          action: 'token.revoke',
          target: String(row.id),
          ip: clientIp(req),
          ok: true,
          details: { name: row.name },
        });
      }
      return { ok: true };
    },
  );
}
