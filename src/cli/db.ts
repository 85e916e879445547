// `atrium db copy`: moves a site from its SQLite file to PostgreSQL (docs/deploy.md). Run it with the
// gateway stopped; the target is written in one transaction, so a failed copy leaves it as it was.
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { CopyRefused, copyDatabase } from '../db/copy.ts';
import { type Db, DbOpenError, openDb, redactUrl } from '../db/index.ts';

function fail(msg: string): never {
  process.stderr.write(`${msg}\n`);
  process.exit(2);
}

export function registerDbCommands(program: Command): void {
  const db = program.command('db').description('database tools');
  db.command('copy')
    .description(
      'copy every table of a SQLite database into another database (PostgreSQL), checking the counts',
    )
    .requiredOption('--from <file>', 'the SQLite file (e.g. /var/lib/atrium/atrium.db) or a sqlite: URL')
    .requiredOption('--to <url>', 'the target, e.g. postgres://atrium:password@db.example.org:5432/atrium')
    .option('--force', 'replace what the target holds (else a non-empty target is refused)')
    .action(async (opts: { from: string; to: string; force?: boolean }) => {
      const file = opts.from.replace(/^sqlite:/, '');
      if (file === ':memory:' || !fs.existsSync(file))
        fail(`from: there is no SQLite database at ${redactUrl(file)}`);
      if (path.resolve(file) === path.resolve(opts.to.replace(/^sqlite:/, '')))
        fail('to: the target is the source');
      let src: Db | undefined;
      let dst: Db | undefined;
      try {
        src = await openDb(`sqlite:${file}`);
        dst = await openDb(opts.to, { poolSize: 1 });
        const say = (l: string) => process.stdout.write(`${l}\n`);
        const r = await copyDatabase(src, dst, { force: opts.force, say });
        const total = r.tables.reduce((n, t) => n + t.rows, 0);
        say(
          `copied ${total} rows in ${r.tables.length} tables from ${file} to ${redactUrl(opts.to)}` +
            (r.replaced > 0 ? ` (replacing ${r.replaced} rows it held)` : '') +
            '; the counts match',
        );
      } catch (e) {
        if (e instanceof CopyRefused) fail(e.message);
        // A URL that cannot be used says so itself, in one line (see main.ts).
        if (e instanceof DbOpenError) throw e;
        fail(`copy failed, the target is unchanged: ${(e as Error).message}`);
      } finally {
        await src?.destroy();
        await dst?.destroy();
      }
    });
}
