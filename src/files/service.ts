// The gateway's side of the Files page: runs the file helper (src/files/helper.ts) as the signed-in
// user, one process per operation, with an argv array (never a shell): setpriv --init-groups as root
// (how the local backend starts sessions), sudo -u for a service user, or directly for a gateway that
// runs as the user. The helper answers with one line of JSON, then, for downloads, the bytes.
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { FilesConfig } from '../config/schema.ts';
import type { UnixIdentity } from '../scheduler/types.ts';
import { type FileRoot, rootsFor } from './paths.ts';

export type FilesRunAs = 'setpriv' | 'sudo' | 'none';

/** A refusal from the helper (or from starting it), with the HTTP status and the field it names. */
export class FilesError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'FilesError';
  }
}

export interface HelperRequest {
  op: string;
  root: string;
  rel: string[];
  [k: string]: unknown;
}

export interface HelperAnswer {
  ok: boolean;
  [k: string]: unknown;
}

export interface FilesServiceOptions {
  cfg: FilesConfig;
  /** Node.js every user can run (agent.node, else the gateway's own). */
  node: string;
  /** The helper bundle, where every user can read it. */
  helper: string;
  log: Logger;
}

/** setpriv as root; else nothing for the gateway's own user, sudo for others. */
export function runAsFor(setting: FilesConfig['runAs'], gatewayUid: number, userUid: number): FilesRunAs {
  if (setting !== 'auto') return setting;
  if (gatewayUid === 0) return 'setpriv';
  return gatewayUid === userUid ? 'none' : 'sudo';
}

/** The argv that runs the helper as `who` (pure: unit-tested). */
export function helperArgv(
  runAs: FilesRunAs,
  who: UnixIdentity,
  node: string,
  helper: string,
  req: HelperRequest,
): string[] {
  return userArgv(runAs, who, [node, helper, JSON.stringify(req)]);
}

/** The argv that runs `cmd` as `who`, the way file operations run (the site's storage quota commands too). */
export function userArgv(runAs: FilesRunAs, who: UnixIdentity, cmd: readonly string[]): string[] {
  switch (runAs) {
    case 'setpriv':
      return ['setpriv', `--reuid=${who.uid}`, `--regid=${who.gid}`, '--init-groups', '--', ...cmd];
    case 'sudo':
      return ['sudo', '-n', '-u', who.user, '--', ...cmd];
    case 'none':
      return [...cmd];
  }
}

/** The first line of a stream (the helper's answer); what follows stays in the stream. */
function firstLine(stream: Readable, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err: Error | null, line?: string) => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
      if (err) reject(err);
      else resolve(line!);
    };
    const onReadable = () => {
      for (let c = stream.read() as Buffer | null; c !== null; c = stream.read() as Buffer | null) {
        const nl = c.indexOf(10);
        if (nl === -1) {
          chunks.push(c);
          size += c.length;
          if (size > limit) return done(new Error('the answer is too long'));
          continue;
        }
        chunks.push(c.subarray(0, nl));
        const rest = c.subarray(nl + 1);
        if (rest.length > 0) stream.unshift(rest);
        return done(null, Buffer.concat(chunks).toString('utf8'));
      }
    };
    const onEnd = () => done(new Error('no answer'));
    const onError = (e: Error) => done(e);
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('error', onError);
  });
}

export interface HelperRun {
  /** The helper's answer; rejects with a FilesError for a refusal. */
  answer: Promise<HelperAnswer>;
  /** What follows the answer (downloads). */
  body: Readable;
  /** Where uploads go. */
  stdin: Writable;
  /** The exit code (null: killed). */
  exit: Promise<number | null>;
  kill(): void;
}

export class FilesService {
  constructor(private readonly o: FilesServiceOptions) {}

  get cfg(): FilesConfig {
    return this.o.cfg;
  }

  roots(who: UnixIdentity): FileRoot[] {
    return rootsFor(this.o.cfg.roots, { name: who.user, home: who.home });
  }

  get maxUploadBytes(): number {
    return Math.floor(this.o.cfg.maxUploadMb * 1024 * 1024);
  }

  get maxEditBytes(): number {
    return Math.floor(this.o.cfg.maxEditKb * 1024);
  }

  /** Starts the helper as `who`. `timeoutMs`: killed after that long (0: never; transfers end with their request). */
  start(who: UnixIdentity, req: HelperRequest, timeoutMs = this.o.cfg.timeoutSeconds * 1000): HelperRun {
    if (who.uid === 0) throw new FilesError(403, 'file operations never run as root');
    const runAs = runAsFor(this.o.cfg.runAs, process.getuid?.() ?? -1, who.uid);
    const argv = helperArgv(runAs, who, this.o.node, this.o.helper, req);
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: '/',
      env: {
        HOME: who.home,
        USER: who.user,
        LOGNAME: who.user,
        PATH: '/usr/local/bin:/usr/bin:/bin',
        LANG: 'C.UTF-8',
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 4000) stderr += d.toString('utf8');
    });
    // An upload's client may vanish: the helper then sees a short stdin and says so.
    child.stdin.on('error', () => undefined);
    const exit = new Promise<number | null>((resolve) => {
      child.once('error', (e) => {
        stderr += e.message;
        resolve(127);
      });
      child.once('close', (code) => resolve(code));
    });
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            stderr += `timed out after ${timeoutMs / 1000} s`;
            child.kill('SIGKILL');
          }, timeoutMs)
        : null;
    timer?.unref();
    void exit.then(() => timer && clearTimeout(timer));
    const answer = firstLine(child.stdout, 64 * 1024 * 1024).then(
      (line) => {
        let a: HelperAnswer;
        try {
          a = JSON.parse(line) as HelperAnswer;
        } catch {
          throw new FilesError(500, 'the file helper gave an unreadable answer');
        }
        if (!a.ok) {
          throw new FilesError(
            typeof a.status === 'number' && a.status >= 400 && a.status < 600 ? a.status : 500,
            typeof a.error === 'string' ? a.error : 'refused',
            typeof a.field === 'string' ? a.field : undefined,
          );
        }
        return a;
      },
      async () => {
        const code = await exit;
        const why = stderr.trim().split('\n').pop() ?? '';
        this.o.log.warn(
          { op: req.op, user: who.user, code, stderr: stderr.slice(-1000) },
          'file helper failed',
        );
        throw new FilesError(500, `the file operation failed${why ? `: ${why.slice(0, 300)}` : ''}`);
      },
    );
    // Callers that only want the answer must not leave an unhandled rejection behind.
    answer.catch(() => undefined);
    return {
      answer,
      body: child.stdout,
      stdin: child.stdin,
      exit,
      kill: () => {
        if (child.exitCode === null) child.kill('SIGTERM');
      },
    };
  }

  /** Runs one operation that needs no stream and returns its answer. */
  async run(who: UnixIdentity, req: HelperRequest): Promise<HelperAnswer> {
    const h = this.start(who, req);
    h.stdin.end();
    try {
      return await h.answer;
    } finally {
      h.body.resume();
    }
  }
}
