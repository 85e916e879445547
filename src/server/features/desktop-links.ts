// One-time desktop links. The owner of a running desktop session makes a link valid once, for some
// minutes, optionally view-only. Opened in any browser, it asks to be confirmed (so a chat's link
// preview cannot spend it), then gives that browser a grant: a cookie scoped to the session's address,
// never a sign-in. The proxy lets a grant reach that session's desktop page and its RFB bridge and
// nothing else (src/proxy/proxy.ts, ProxyGuests); the bridge filters a guest's viewer
// (src/proxy/rfb-input.ts, RfbGuestFilter). Links and grants are kept as hashes; a revoke, the link's
// expiry or the session's end ends the grant and closes its connections. Every creation, use, refusal,
// revoke and end is in the audit log. Pure parts: src/core/desktop-link.ts.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { OkReply } from '../../api/common.ts';
import {
  DesktopLinkParams,
  DesktopLinksReply,
  type DesktopLinkView,
  NewDesktopLinkBody,
  NewDesktopLinkReply,
} from '../../api/desktop-links.ts';
import { SessionParams } from '../../api/sessions.ts';
import { hashToken, newToken } from '../../auth/secrets.ts';
import {
  checkLinkMinutes,
  type DesktopLinkEnd,
  type DesktopLinkState,
  desktopLinkRefusal,
  desktopLinkState,
} from '../../core/desktop-link.ts';
import {
  type DesktopLinkRow,
  desktopLinkByGrant,
  desktopLinkByToken,
  desktopLinkOf,
  endDesktopLinks,
  insertDesktopLink,
  listDesktopLinks,
  redeemDesktopLink,
} from '../../db/desktop-links.ts';
import { getSession, type SessionRow } from '../../db/sessions.ts';
import { findUserById } from '../../db/users.ts';
import { type ProxyGuest, sendPage } from '../../proxy/proxy.ts';
import { sessionPrefix } from '../../proxy/routes.ts';
import { clientIp, cookieOf, HttpError, requireBrowser, requireUser } from '../auth.ts';
import type { AppContext } from '../context.ts';
import type { Feature } from '../feature.ts';
import { spec } from '../route-spec.ts';

export const LINK_COOKIE = 'atrium_desktop_link';
const SESSION_ID = /^[a-z0-9]{4,32}$/;
/** newToken(): 32 random bytes, base64url. */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;
/** How often open guest connections are checked against the database (a revoke on another gateway). */
const RECHECK_MS = 5_000;

function view(r: DesktopLinkRow, now: number): DesktopLinkView {
  return {
    id: r.id,
    sessionId: r.session_id,
    viewOnly: r.view_only === 1,
    state: desktopLinkState(facts(r), now),
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    usedAt: r.used_at,
    endedAt: r.ended_at,
  };
}

function facts(r: DesktopLinkRow) {
  return {
    expiresAt: r.expires_at,
    usedAt: r.used_at,
    endedAt: r.ended_at,
    endedBy: (r.ended_by as DesktopLinkEnd | null) ?? null,
  };
}

const TokenParams = Type.Object({ token: Type.String({ maxLength: 100 }) });
type TokenParams = { token: string };

export const desktopLinksFeature: Feature = {
  name: 'desktop-links',
  register(fastify: FastifyInstance, ctx: AppContext) {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const maxMinutes = ctx.cfg.sessions.desktopLinkMaxMinutes;
    const desktopApps = () => ctx.cfg.appCatalogue.filter((a) => a.transport === 'rfb').map((a) => a.id);
    /** The session's desktop is up here: running, its main app an rfb one with its route. */
    const shareable = (s: SessionRow) => s.state === 'running' && ctx.routes.get(s.id)?.transport === 'rfb';

    const audit = (
      req: FastifyRequest | null,
      action: string,
      ok: boolean,
      l: { link?: DesktopLinkRow; actor?: { id: number; username: string }; why?: string },
    ) =>
      ctx.audit
        .record({
          actorUserId: l.actor?.id ?? null,
          actor: l.actor?.username ?? (req ? 'guest' : 'atrium'),
          action,
          target: l.link?.session_id ?? null,
          ip: req ? clientIp(req) : null,
          ok,
          details: {
            ...(l.link
              ? { link: l.link.id, viewOnly: l.link.view_only === 1, expiresAt: l.link.expires_at }
              : {}),
            ...(l.why ? { reason: l.why } : {}),
          },
        })
        .catch((e: Error) => ctx.log.warn({ err: e.message }, 'desktop link: audit entry not written'));

    /** Ends links early: their grants stop at once and their open desktop connections close. */
    const end = async (where: { id: number } | { sessionId: string }, by: DesktopLinkEnd) => {
      const ended = await endDesktopLinks(ctx.db, where, by, Date.now());
      for (const l of ended) ctx.proxy.closeGuestSockets(String(l.id));
      return ended;
    };

    ctx.proxy.setGuests({
      cookie: LINK_COOKIE,
      async authenticate(req, p): Promise<ProxyGuest | null> {
        const grant = cookieOf(req.headers.cookie, LINK_COOKIE);
        if (!grant || !TOKEN.test(grant)) return null;
        const link = await desktopLinkByGrant(ctx.db, hashToken(grant));
        const owner = link && ctx.routes.get(link.session_id)?.username;
        if (!link || link.session_id !== p.sessionId || (owner !== undefined && owner !== p.username))
          return null;
        return {
          sessionId: link.session_id,
          userId: link.user_id,
          viewOnly: link.view_only === 1,
          until: link.expires_at,
          key: String(link.id),
          ended: desktopLinkState(facts(link), Date.now()) !== 'in use',
        };
      },
    });

    // The session stopped (or failed): its links end with it, here at once, elsewhere at the next check.
    (ctx.services.get('session.onTransition') as ((s: SessionRow, to: string) => void)[]).push((s, to) => {
      if (to !== 'ending' && to !== 'ended' && to !== 'failed') return;
      end({ sessionId: s.id }, 'session').then(
        (ended) => {
          for (const link of ended)
            void audit(null, 'desktop_link.end', true, { link, why: `session ${to}` });
        },
        (e: Error) => ctx.log.warn({ err: e.message, session: s.id }, 'desktop links: not ended'),
      );
    });

    app.get(
      '/api/desktop-links',
      spec(
        'Your one-time desktop links of the last day, and which sessions may have them',
        DesktopLinksReply,
      ),
      async (req): Promise<DesktopLinksReply> => {
        const user = requireUser(req, 'sessions');
        const now = Date.now();
        const rows = await listDesktopLinks(ctx.db, user.id, now - 24 * 3600_000);
        return { maxMinutes, apps: desktopApps(), links: rows.map((r) => view(r, now)) };
      },
    );

    app.post(
      '/api/sessions/:id/desktop-links',
      spec(
        'Make a one-time link to your running desktop session (from a signed-in browser only); the link is in this reply only',
        NewDesktopLinkReply,
        { params: SessionParams, body: NewDesktopLinkBody },
        201,
      ),
      async (req, reply) => {
        // Like API tokens: a credential is made by a person at a browser, not by a (possibly stolen) token.
        const user = requireBrowser(req);
        const { id } = req.params;
        const session = SESSION_ID.test(id) ? await ctx.sessions.getOwned(user, id) : undefined;
        if (!session) throw new HttpError(404, 'no such session');
        const bad = checkLinkMinutes(req.body.minutes, maxMinutes);
        if (bad) throw new HttpError(400, bad, 'minutes');
        if (!shareable(session))
          throw new HttpError(409, 'only a running desktop session can be shared with a link');
        const token = newToken();
        const now = Date.now();
        const link = await insertDesktopLink(ctx.db, {
          sessionId: session.id,
          userId: user.id,
          tokenHash: hashToken(token),
          viewOnly: req.body.viewOnly === true,
          now,
          expiresAt: now + Math.round(req.body.minutes * 60_000),
        });
        await audit(req, 'desktop_link.create', true, { link, actor: user });
        return reply.code(201).send({
          url: `${ctx.publicUrl()}/desktop-link/${token}`,
          link: view(link, now),
        } satisfies NewDesktopLinkReply);
      },
    );

    app.delete(
      '/api/desktop-links/:id',
      spec(
        'Revoke a desktop link: unused, it can no longer be opened; in use, its browser loses the desktop',
        OkReply,
        { params: DesktopLinkParams },
      ),
      async (req): Promise<OkReply> => {
        const user = requireUser(req, 'sessions');
        const id = /^[1-9]\d{0,14}$/.test(req.params.id) ? Number(req.params.id) : Number.NaN;
        const link = Number.isSafeInteger(id) ? await desktopLinkOf(ctx.db, id, user.id) : undefined;
        if (!link) throw new HttpError(404, 'no such link');
        const [ended] = await end({ id: link.id }, 'owner');
        if (ended) await audit(req, 'desktop_link.revoke', true, { link: ended, actor: user });
        return { ok: true };
      },
    );

    // The link itself: a page that asks to open the desktop (GET spends nothing), and the open (POST).
    const refuse = (
      req: FastifyRequest,
      reply: FastifyReply,
      link: DesktopLinkRow | undefined,
      state: DesktopLinkState | null,
    ) => {
      void audit(req, 'desktop_link.use', false, { link, why: state ?? 'no such link' });
      const { title, message } = desktopLinkRefusal(state);
      reply.hijack();
      sendPage(reply.raw, state === null ? 404 : 410, title, message);
    };
    /** The link a request names and its state now: usable only when `unused` and its desktop is up. */
    const lookUp = async (token: string) => {
      const link = TOKEN.test(token) ? await desktopLinkByToken(ctx.db, hashToken(token)) : undefined;
      if (!link) return { link, state: null };
      const now = Date.now();
      let state = desktopLinkState(facts(link), now);
      if (state === 'unused') {
        const session = await getSession(ctx.db, link.session_id);
        if (!session || !shareable(session)) {
          await end({ id: link.id }, 'session');
          state = 'ended';
        }
      }
      return { link, state };
    };
    const page = { config: { rateLimit: true }, schema: { params: TokenParams } };
    app.get<{ Params: TokenParams }>('/desktop-link/:token', page, async (req, reply) => {
      const { link, state } = await lookUp(req.params.token);
      if (state !== 'unused') return refuse(req, reply, link, state);
      reply.hijack();
      sendPage(
        reply.raw,
        200,
        link?.view_only ? 'A shared desktop (view only)' : 'A shared desktop',
        `Someone shared a remote desktop with you. The link opens once, in this browser only, until ${new Date(
          link!.expires_at,
        )
          .toISOString()
          .slice(11, 16)} UTC.`,
        { postButton: 'Open the desktop' },
      );
    });
    // Origin-checked (a form of this page posts it); there is no sign-in, hence no CSRF token.
    const open = { config: { rateLimit: true, csrf: 'origin' as const }, schema: { params: TokenParams } };
    app.post<{ Params: TokenParams }>('/desktop-link/:token', open, async (req, reply) => {
      const { link, state } = await lookUp(req.params.token);
      if (!link || state !== 'unused') return refuse(req, reply, link, state);
      const grant = newToken();
      const now = Date.now();
      if (
        !(await redeemDesktopLink(ctx.db, link.id, { grantHash: hashToken(grant), ip: clientIp(req), now }))
      )
        return refuse(req, reply, link, 'in use');
      const owner = await findUserById(ctx.db, link.user_id);
      if (!owner) return refuse(req, reply, link, 'ended');
      await audit(req, 'desktop_link.use', true, { link });
      const prefix = sessionPrefix(owner.username, link.session_id);
      const cookie = [
        `${LINK_COOKIE}=${grant}`,
        `Path=${prefix}`,
        `Max-Age=${Math.max(1, Math.floor((link.expires_at - now) / 1000))}`,
        'HttpOnly',
        'SameSite=Strict',
        ...(ctx.secureCookies ? ['Secure'] : []),
      ];
      return reply
        .header('set-cookie', cookie.join('; '))
        .header('cache-control', 'no-store')
        .redirect(prefix, 303);
    });
  },

  start(ctx: AppContext) {
    // Open guest connections whose link ended on another gateway (or expired) close within RECHECK_MS.
    const timer = setInterval(() => {
      const keys = ctx.proxy.guestKeys();
      if (keys.length === 0) return;
      const now = Date.now();
      void ctx.db
        .selectFrom('desktop_links')
        .select('id')
        .where(
          'id',
          'in',
          keys.map((k) => Number(k)),
        )
        .where('ended_at', 'is', null)
        .where('expires_at', '>', now)
        .execute()
        .then((alive) => {
          const live = new Set(alive.map((r) => String(r.id)));
          for (const k of keys) if (!live.has(k)) ctx.proxy.closeGuestSockets(k);
        })
        .catch(() => undefined);
    }, RECHECK_MS);
    timer.unref();
    ctx.services.set('desktopLinks.timer', timer);
  },

  stop(ctx: AppContext) {
    clearInterval(ctx.services.get('desktopLinks.timer') as NodeJS.Timeout | undefined);
  },
};
