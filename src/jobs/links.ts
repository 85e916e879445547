// Where a job's page leads: its working directory in a running Jupyter-like session of the same cluster
// (when it lies under the user's home, which is what such apps show), else why not.
import type { JobLinks } from '../api/jobs.ts';
import type { LoadedConfig } from '../config/load.ts';
import type { User } from '../db/users.ts';
import type { SessionService } from '../sessions/service.ts';
import { lookupUnixUser } from '../system/users.ts';
import { browseLink, type JobRow } from './view.ts';

export interface JobLinkerDeps {
  /** The app catalogue says how each app browses a folder (`browsePath`). */
  cfg: LoadedConfig;
  sessions: SessionService;
}

export class JobLinker {
  private readonly homes = new Map<string, { home: string; at: number }>();

  constructor(private readonly deps: JobLinkerDeps) {}

  async linksFor(user: User, row: JobRow): Promise<JobLinks> {
    const newSession = `/?cluster=${encodeURIComponent(row.cluster)}&app=jupyter`;
    if (!row.work_dir) return { browse: null, newSession, why: 'the working directory is not known yet' };
    const home = await this.homeOf(user.unixUser);
    if (!home) return { browse: null, newSession, why: 'your home directory is not known here' };
    const sessions = await this.deps.sessions.listFor(user);
    for (const s of sessions) {
      if (s.state !== 'running' || s.cluster !== row.cluster) continue;
      const candidates = [{ id: s.app, url: s.url }, ...s.apps.map((a) => ({ id: a.id, url: a.url }))];
      for (const a of candidates) {
        const def = this.deps.cfg.appCatalogue.find((x) => x.id === a.id) as
          | { id: string; browsePath?: string }
          | undefined;
        const template = def?.browsePath ?? (a.id === 'jupyter' ? 'tree/{path}' : undefined);
        if (!template) continue;
        const url = browseLink(a.url, home, row.work_dir, template);
        if (!url) {
          return {
            browse: null,
            newSession,
            why: `the working directory is outside your home (${home}), which is what Jupyter shows`,
          };
        }
        return { browse: { url, sessionId: s.id, sessionName: s.label || s.appName }, newSession, why: null };
      }
    }
    return { browse: null, newSession, why: 'you have no running Jupyter session on this cluster' };
  }

  private async homeOf(unixUser: string): Promise<string | null> {
    const hit = this.homes.get(unixUser);
    if (hit && Date.now() - hit.at < 300_000) return hit.home;
    const id = await lookupUnixUser(unixUser);
    if (!id) return null;
    this.homes.set(unixUser, { home: id.home, at: Date.now() });
    return id.home;
  }
}
