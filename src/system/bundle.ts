// Atrium's generated files (the session agent, the file helper, the gateway's command): each one entry
// point bundled by esbuild into one ES module for Node, written under dist/ of this checkout.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout's root (this file is two levels below it, as every bundle's source is). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface BundleOptions {
  entry: string;
  out: string;
  /** The first line(s) of the file: who generated it (and any code that must run first). */
  banner: string;
  /** Node version the code must run on (default node20). */
  target?: string;
  /** Leave node_modules out (they are imported where they are installed). */
  external?: boolean;
  /** Users' jobs run it: make its folders up to the root readable and searchable by all. */
  forUsers?: boolean;
}

export async function bundleModule(o: BundleOptions): Promise<string> {
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: [o.entry],
    outfile: o.out,
    bundle: true,
    ...(o.external ? { packages: 'external' as const } : {}),
    platform: 'node',
    format: 'esm',
    target: o.target ?? 'node20',
    logLevel: 'warning',
    banner: { js: o.banner },
  });
  // Nobody but the installer writes it.
  fs.chmodSync(o.out, 0o644);
  if (o.forUsers)
    for (let d = path.dirname(o.out); d.startsWith(ROOT) && d !== ROOT; d = path.dirname(d))
      fs.chmodSync(d, 0o755);
  return o.out;
}

/** Whether `out` is missing or older than the newest of `sources`. */
export function isStale(out: string, newestSource: number): boolean {
  return !fs.existsSync(out) || newestSource > fs.statSync(out).mtimeMs;
}
