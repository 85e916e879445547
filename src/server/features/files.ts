// The Files page's API: every route checks the path (src/files/paths.ts), then has the file helper do the
// work as the user (src/files/service.ts). Refusals are 4xx replies that name the problem, logged and
// written to the audit log with the path tried; changes are audited too.
import path from 'node:path';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NotJson, OkReply } from '../../api/common.ts';
import {
  FilesEntryReply,
  FilesListReply,
  FilesMkdirBody,
  FilesMoveBody,
  FilesMoveReply,
  FilesPathQuery,
  FilesRootsReply,
  FilesSaveQuery,
  FilesStatReply,
  FilesTextReply,
  FilesUploadQuery,
} from '../../api/files.ts';
import type { User } from '../../db/users.ts';
import { ensureFilesHelper, FILES_HELPER, FILES_HELPER_REL } from '../../files/bundle.ts';
import {
  checkName,
  contentDisposition,
  type FileRoot,
  PathProblem,
  type ResolvedPath,
  resolvePath,
} from '../../files/paths.ts';
import { FilesError, FilesService, type HelperRun } from '../../files/service.ts';
import type { UnixIdentity } from '../../scheduler/types.ts';
import { whyOthersCannot } from '../../system/runtime-dir.ts';
import { lookupUnixUser } from '../../system/users.ts';
import { clientIp, HttpError, requireUser } from '../auth.ts';
import type { AppContext } from '../context.ts';
import type { Feature } from '../feature.ts';
import { spec } from '../route-spec.ts';

interface Caller {
  user: User;
  who: UnixIdentity;
  roots: FileRoot[];
}

/** Whether a cluster's nodes see this host's file systems (clusters[].filesHere; ssh: no by default). */
export function filesHere(c: { backend: string; filesHere?: boolean }): boolean {
  return c.filesHere ?? c.backend !== 'ssh';
}

export function filesService(ctx: AppContext): FilesService | undefined {
  return ctx.services.get('files') as FilesService | undefined;
}

export const filesFeature: Feature = {
  name: 'files',
  async register(fastify: FastifyInstance, ctx: AppContext) {
    const cfg = ctx.cfg.files;
    const log = ctx.log.child({ part: 'files' });
    const runtimeRoot = (ctx.services.get('runtime.root') as string | undefined) ?? process.cwd();
    const helper = path.join(runtimeRoot, FILES_HELPER_REL);
    // Built with the agent at start, unless the site names its own agent (no runtime copy then).
    if (helper === FILES_HELPER && cfg.enabled) await ensureFilesHelper();
    // The users run the helper: a private checkout without a runtimeDir copy (agent.script set) cannot.
    const unusable = !cfg.enabled
      ? 'the Files page is turned off (files.enabled)'
      : process.getuid?.() === 0 && whyOthersCannot(helper)
        ? `the file helper cannot be read by the users (${whyOthersCannot(helper)})`
        : null;
    if (unusable && cfg.enabled) log.warn({ why: unusable }, 'the Files page is unavailable');
    const svc = new FilesService({ cfg, node: ctx.cfg.agent.node ?? process.execPath, helper, log });
    ctx.services.set('files', svc);

    const caller = async (req: FastifyRequest): Promise<Caller> => {
      const user = requireUser(req);
      // API tokens reach files only with their own scope ("read" does not stand in for it).
      if (req.tokenScopes && !req.tokenScopes.includes('files'))
        throw new HttpError(403, 'this API token lacks the "files" scope');
      if (unusable) throw new HttpError(503, unusable);
      const who = await lookupUnixUser(user.unixUser);
      if (!who) throw new HttpError(403, `your Unix account "${user.unixUser}" is unknown on this host`);
      if (who.uid === 0) throw new HttpError(403, 'file operations never run as root');
      return { user, who, roots: svc.roots(who) };
    };

    /** Requests whose refusal is already logged and audited. */
    const recorded = new WeakSet<FastifyRequest>();

    const record = async (
      req: FastifyRequest,
      op: string,
      tried: unknown,
      status: number,
      message: string,
    ) => {
      recorded.add(req);
      const user = req.user?.username;
      if (status >= 500) log.error({ op, user, err: message }, 'file operation failed');
      else log.warn({ op, user, path: tried, why: message }, 'file operation refused');
      await ctx.audit
        .record({
          actorUserId: req.user?.id ?? null,
          actor: user ?? null,
          action: `files.${op}`,
          target: typeof tried === 'string' ? tried.slice(0, 500) : null,
          ip: clientIp(req),
          ok: false,
          details: { status, why: message.slice(0, 500) },
        })
        .catch(() => undefined);
    };

    /** Logs and audits a refusal, then answers it. */
    const refuse = async (req: FastifyRequest, op: string, tried: unknown, e: unknown) => {
      const status = e instanceof PathProblem || e instanceof FilesError ? e.status : 500;
      const message = e instanceof Error ? e.message : String(e);
      const field = e instanceof PathProblem ? e.field : e instanceof FilesError ? e.field : undefined;
      await record(req, op, tried, status, message);
      throw new HttpError(status, message, field);
    };

    // Tries refused before a handler ran (a NUL, a field of the wrong type, no CSRF header, a rate
    // limit) are logged and audited too: every refused file operation is in the audit log.
    fastify.addHook('onSend', async (req, reply, payload) => {
      const url = req.routeOptions.url;
      if (!url?.startsWith('/api/files') || reply.statusCode < 400 || recorded.has(req)) return payload;
      const op = url === '/api/files' ? 'delete' : url.slice('/api/files/'.length);
      let why = `HTTP ${reply.statusCode}`;
      try {
        why = (JSON.parse(String(payload)) as { error?: string }).error ?? why;
      } catch {
        // not JSON
      }
      const q = req.query as { path?: unknown } | undefined;
      const b = req.body as { path?: unknown } | undefined;
      await record(req, op, q?.path ?? b?.path, reply.statusCode, why);
      return payload;
    });

    const audit = (req: FastifyRequest, c: Caller, op: string, target: string, details = {}) =>
      ctx.audit
        .record({
          actorUserId: c.user.id,
          actor: c.user.username,
          action: `files.${op}`,
          target: target.slice(0, 500),
          ip: clientIp(req),
          ok: true,
          details,
        })
        .catch(() => undefined);

    /** Runs `f` with the caller; any refusal on the way is logged, audited and answered. */
    const guarded =
      <T>(
        op: string,
        tried: (req: FastifyRequest) => unknown,
        f: (req: FastifyRequest, c: Caller, reply: FastifyReply) => Promise<T>,
      ) =>
      async (req: FastifyRequest, reply: FastifyReply): Promise<T> => {
        try {
          return await f(req, await caller(req), reply);
        } catch (e) {
          // A refused upload's body is not wanted: the connection ends with the answer.
          if (req.method === 'PUT') reply.header('connection', 'close');
          if (e instanceof HttpError) {
            if (e.status === 401) throw e;
            return refuse(req, op, tried(req), new FilesError(e.status, e.message, e.field));
          }
          return refuse(req, op, tried(req), e);
        }
      };

    const where = (r: ResolvedPath) => ({ root: r.root.path, rel: r.rel });

    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/api/files/roots',
      spec('Your folders (roots) and whether each can be read now', FilesRootsReply),
      async (req) => {
        const c = await caller(req).catch((e) => {
          if (e instanceof HttpError && e.status === 503) return null;
          throw e;
        });
        const clusters = [...ctx.clusters.values()]
          .filter((cl) => !c || cl.userMayUse(c.user))
          .map((cl) => ({ name: cl.name, title: cl.title, filesHere: filesHere(cl.cfg) }));
        if (!c) return { available: false, why: unusable, roots: [], clusters, limits: null };
        const checked = await svc.run(c.who, {
          op: 'roots',
          root: '/',
          rel: [],
          roots: c.roots.map((r) => r.path),
        });
        const state = new Map(
          (checked.roots as { path: string; ok: boolean; error?: string }[]).map((r) => [r.path, r]),
        );
        return {
          available: true,
          home: c.who.home,
          roots: c.roots.map((r) => ({
            ...r,
            ok: state.get(r.path)?.ok ?? false,
            error: state.get(r.path)?.error,
          })),
          clusters,
          limits: { maxUploadBytes: svc.maxUploadBytes, maxEditBytes: svc.maxEditBytes },
        };
      },
    );

    const pathQ = (req: FastifyRequest) => (req.query as { path?: unknown })?.path;

    app.get(
      '/api/files/list',
      spec("A folder's entries", FilesListReply, { querystring: FilesPathQuery }),
      guarded('list', pathQ, async (req, c) => {
        const r = resolvePath((req.query as FilesPathQuery).path, c.roots);
        const a = await svc.run(c.who, { op: 'list', ...where(r) });
        return { path: r.path, root: r.root, entries: a.entries, truncated: a.truncated };
      }),
    );

    app.get(
      '/api/files/stat',
      spec('One entry (file, folder or link)', FilesStatReply, { querystring: FilesPathQuery }),
      guarded('stat', pathQ, async (req, c) => {
        const r = resolvePath((req.query as FilesPathQuery).path, c.roots);
        const a = await svc.run(c.who, { op: 'stat', ...where(r) });
        return { path: r.path, root: r.root, entry: a.entry };
      }),
    );

    app.get(
      '/api/files/text',
      spec('A text file, for the editor', FilesTextReply, { querystring: FilesPathQuery }),
      guarded('text', pathQ, async (req, c) => {
        const r = resolvePath((req.query as FilesPathQuery).path, c.roots);
        const a = await svc.run(c.who, { op: 'text', ...where(r), maxBytes: svc.maxEditBytes });
        return { path: r.path, content: a.content, entry: a.entry };
      }),
    );

    app.get(
      '/api/files/download',
      spec(
        'Download a file, or a folder as a .tar.gz',
        NotJson('application/octet-stream', 'The file (a folder: application/gzip, a tar archive).'),
        { querystring: FilesPathQuery },
      ),
      guarded('download', pathQ, async (req, c, reply) => {
        const r = resolvePath((req.query as FilesPathQuery).path, c.roots);
        const h = svc.start(c.who, { op: 'download', ...where(r) }, 0);
        h.stdin.end();
        // A browser that goes away ends the helper (and its tar) too.
        reply.raw.once('close', () => h.kill());
        const a = await h.answer.catch((e) => {
          h.kill();
          throw e;
        });
        void h.exit.then((code) => {
          if (code !== 0) {
            log.warn({ path: r.path, code }, 'download ended early');
            h.body.destroy(new Error('the file helper failed during the download'));
          }
        });
        reply
          .header('content-type', a.kind === 'archive' ? 'application/gzip' : 'application/octet-stream')
          .header('content-disposition', contentDisposition(String(a.name)))
          .header('x-content-type-options', 'nosniff')
          .header('content-security-policy', "default-src 'none'; sandbox");
        if (typeof a.size === 'number') reply.header('content-length', a.size);
        return reply.send(h.body);
      }),
    );

    app.post(
      '/api/files/mkdir',
      spec('Create a folder', FilesEntryReply, { body: FilesMkdirBody }, 201),
      guarded(
        'mkdir',
        (req) => (req.body as { path?: unknown })?.path,
        async (req, c, reply) => {
          const body = req.body as FilesMkdirBody;
          const r = resolvePath(body.path, c.roots);
          const name = checkName(body.name);
          const a = await svc.run(c.who, { op: 'mkdir', ...where(r), name });
          await audit(req, c, 'mkdir', `${r.path}/${name}`);
          return reply.code(201).send({ entry: a.entry });
        },
      ),
    );

    app.post(
      '/api/files/move',
      spec('Move or rename a file or folder', FilesMoveReply, { body: FilesMoveBody }),
      guarded(
        'move',
        (req) => (req.body as { path?: unknown })?.path,
        async (req, c) => {
          const body = req.body as FilesMoveBody;
          const from = resolvePath(body.path, c.roots);
          if (from.rel.length === 0)
            throw new PathProblem(403, 'path', 'a root folder cannot be moved or renamed');
          const parent = from.path.slice(0, from.path.lastIndexOf('/')) || '/';
          const to = resolvePath(body.to ?? parent, c.roots, 'to');
          const name = body.name === undefined ? undefined : checkName(body.name);
          const a = await svc.run(c.who, { op: 'move', ...where(from), to: where(to), name });
          await audit(req, c, 'move', from.path, { to: to.path, name: name ?? null });
          return {
            entry: a.entry,
            path: `${to.path === '/' ? '' : to.path}/${(a.entry as { name: string }).name}`,
          };
        },
      ),
    );

    app.delete(
      '/api/files',
      spec('Delete a file or a folder with everything in it', OkReply, { querystring: FilesPathQuery }),
      guarded('delete', pathQ, async (req, c) => {
        const r = resolvePath((req.query as FilesPathQuery).path, c.roots);
        if (r.rel.length === 0) throw new PathProblem(403, 'path', 'a root folder cannot be deleted');
        await svc.run(c.who, { op: 'delete', ...where(r) });
        await audit(req, c, 'delete', r.path);
        return { ok: true };
      }),
    );

    // Uploads and saves stream their body to the helper: no parser buffers it, and the size limit is
    // checked on the declared length before a byte is read.
    await fastify.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
      const raw = scope.withTypeProvider<TypeBoxTypeProvider>();

      /** Declared length of the body, checked against `max`. */
      const lengthOf = (req: FastifyRequest, max: number, field: string): number => {
        const v = req.headers['content-length'];
        if (v === undefined || !/^\d{1,15}$/.test(v))
          throw new FilesError(411, `${field}: the size must be given (Content-Length)`, field);
        const n = Number(v);
        if (n > max) throw new FilesError(413, `${field}: ${n} bytes, over the limit of ${max} bytes`, field);
        return n;
      };

      /** Feeds the request body to the helper; a cut-off request ends its stdin short. */
      const feed = (req: FastifyRequest, h: HelperRun) => {
        const body = req.raw;
        body.pipe(h.stdin);
        body.once('aborted', () => h.stdin.end());
        body.once('error', () => h.stdin.end());
        body.once('close', () => {
          if (!body.complete) h.stdin.end();
        });
      };

      raw.put(
        '/api/files/upload',
        spec(
          'Upload a file into a folder: the body is its bytes (Content-Length required)',
          FilesEntryReply,
          { querystring: FilesUploadQuery, consumes: ['application/octet-stream'] },
          201,
        ),
        guarded('upload', pathQ, async (req, c, reply) => {
          const q = req.query as FilesUploadQuery;
          const r = resolvePath(q.path, c.roots);
          const name = checkName(q.name);
          const size = lengthOf(req, svc.maxUploadBytes, 'file');
          const h = svc.start(
            c.who,
            {
              op: 'upload',
              ...where(r),
              name,
              size,
              overwrite: q.overwrite === '1' || q.overwrite === 'true',
            },
            0,
          );
          feed(req, h);
          const a = await h.answer.catch((e) => {
            // Refused before the whole body was read: the rest is not wanted.
            reply.header('connection', 'close');
            throw e;
          });
          await audit(req, c, 'upload', `${r.path === '/' ? '' : r.path}/${name}`, { size });
          return reply.code(201).send({ entry: a.entry });
        }),
      );

      raw.put(
        '/api/files/text',
        spec("Save the editor's text (refused when the file changed since `etag`)", FilesEntryReply, {
          querystring: FilesSaveQuery,
          consumes: ['application/octet-stream'],
        }),
        guarded('save', pathQ, async (req, c, reply) => {
          const q = req.query as FilesSaveQuery;
          const r = resolvePath(q.path, c.roots);
          if (r.rel.length === 0) throw new PathProblem(400, 'path', 'a folder');
          const size = lengthOf(req, svc.maxEditBytes, 'content');
          const h = svc.start(c.who, { op: 'save', ...where(r), size, etag: q.etag || null }, 0);
          feed(req, h);
          const a = await h.answer.catch((e) => {
            reply.header('connection', 'close');
            throw e;
          });
          await audit(req, c, 'save', r.path, { size });
          return { entry: a.entry };
        }),
      );
    });
  },
};
