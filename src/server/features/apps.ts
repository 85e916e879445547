// The apps feature: at start, builds the shipped apps' programs and pages when needed (dist/apps) and,
// as root on a host that runs desktops itself, makes /tmp/.X11-unix root's (mode 1777) before any
// user's X server could create it as theirs.
import fs from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { ensureAppAssets } from '../../apps/assets.ts';
import type { AppContext } from '../context.ts';
import type { Feature } from '../feature.ts';

function ensureX11Dir(ctx: AppContext): void {
  const desktops = ctx.cfg.appCatalogue.some((a) => a.transport === 'rfb');
  const local = [...ctx.clusters.values()].some((c) => c.appSockets === 'unix');
  if (!desktops || !local || process.getuid?.() !== 0) return;
  try {
    fs.mkdirSync('/tmp/.X11-unix', { mode: 0o1777 });
  } catch {
    // exists
  }
  const st = fs.lstatSync('/tmp/.X11-unix');
  if (!st.isDirectory()) {
    ctx.log.warn('/tmp/.X11-unix is not a directory: desktops will not start');
    return;
  }
  if (st.uid !== 0) fs.chownSync('/tmp/.X11-unix', 0, 0);
  fs.chmodSync('/tmp/.X11-unix', 0o1777);
}

export const appsFeature: Feature = {
  name: 'apps',
  async register(_app: FastifyInstance, ctx: AppContext) {
    try {
      await ensureAppAssets();
    } catch (e) {
      ctx.log.warn({ err: (e as Error).message }, 'could not build the apps (terminal, desktop page)');
    }
    ensureX11Dir(ctx);
  },
};
