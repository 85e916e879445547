// The options every command that reads the configuration or the database takes, as `serve` does:
// -c/--config (or ATRIUM_CONFIG) and --data-dir, so a set-up made with `serve --data-dir D` can be
// administered with the same arguments. Commands that write say which database they write.
import fs from 'node:fs';
import path from 'node:path';
import { Option } from 'commander';
import { ConfigError, databaseUrl, type LoadedConfig, loadConfig } from '../config/load.ts';
import { type Db, openDb } from '../db/index.ts';

export interface CliConfigOptions {
  config?: string;
  dataDir?: string;
}

export const configOption = () =>
  new Option('-c, --config <file>', 'configuration file (YAML); env ATRIUM_CONFIG');
export const dataDirOption = () => new Option('--data-dir <dir>', 'data directory (overrides dataDir)');

/** The configuration with --data-dir applied; exits 2 with the problems when it is invalid. */
export function cliConfig(opts: CliConfigOptions): LoadedConfig {
  let cfg: LoadedConfig;
  try {
    cfg = loadConfig(opts.config ?? process.env.ATRIUM_CONFIG);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  if (opts.dataDir) cfg.dataDir = path.resolve(opts.dataDir);
  return cfg;
}

/** The SQLite file of a database URL, or null (in memory). */
export function databaseFile(cfg: LoadedConfig): string | null {
  const m = /^sqlite:(.*)$/.exec(databaseUrl(cfg));
  return m && m[1] !== ':memory:' ? m[1]! : null;
}

/** Opens the database; `say` (when given) is told which file, and whether it is new. */
export async function openCliDb(cfg: LoadedConfig, say?: (line: string) => void): Promise<Db> {
  const file = databaseFile(cfg);
  const isNew = file !== null && !fs.existsSync(file);
  // A server URL is named without its credentials.
  say?.(`${file ?? databaseUrl(cfg).replace(/\/\/[^@/]*@/, '//')}${isNew ? ' (new)' : ''}`);
  return openDb(databaseUrl(cfg));
}
