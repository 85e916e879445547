import fs from 'node:fs';
import { Command } from 'commander';
import { generatePassword, hashPassword } from '../auth/passwords.ts';
import { ConfigError, databaseUrl, loadConfig } from '../config/load.ts';
import { DbOpenError, probeDb } from '../db/index.ts';
import { createUser, findUserByName, updateUser } from '../db/users.ts';
import { startGateway } from '../server/gateway.ts';
import { ensurePackages, JUPYTER_NEED } from '../system/packages.ts';
import { RuntimeDirError } from '../system/runtime-dir.ts';
import { isValidUnixName, lookupUnixUser } from '../system/users.ts';
import { checkAgentPaths } from './check.ts';
import { registerExtraCommands } from './extra.ts';
import { cliConfig, configOption, databaseFile, dataDirOption, openCliDb } from './options.ts';

const program = new Command();
program.name('atrium').description('Atrium: interactive computing gateway for HPC clusters');

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/** Where the accounts are written, first, so a wrong --config or --data-dir shows at once. */
const usersDatabase = (line: string) => process.stdout.write(`users database: ${line}\n`);

program
  .command('serve')
  .description('run the gateway')
  .addOption(configOption())
  .option('--host <host>', 'listen address (overrides server.host)')
  .option('--port <port>', 'listen port (overrides server.port)')
  .addOption(dataDirOption())
  .action(async (opts: { config?: string; host?: string; port?: string; dataDir?: string }) => {
    const cfg = cliConfig(opts);
    if (opts.host) cfg.server.host = opts.host;
    if (opts.port) cfg.server.port = Number(opts.port);
    if (opts.dataDir) {
      fs.mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
      cfg.dataDir = fs.realpathSync.native(cfg.dataDir);
    }
    const print = (l: string) => process.stdout.write(`${l}\n`);
    if (
      cfg.installPackages &&
      cfg.clusters.some((c) => c.backend === 'local') &&
      cfg.appCatalogue.some((a) => a.id === 'jupyter')
    ) {
      ensurePackages([JUPYTER_NEED], print);
    }
    let gw: Awaited<ReturnType<typeof startGateway>>;
    try {
      gw = await startGateway(cfg, { print });
    } catch (e) {
      if (!(e instanceof RuntimeDirError)) throw e;
      process.stderr.write(`atrium: cannot start: ${e.message}\n`);
      process.exit(2);
    }
    print(
      `atrium: serving on ${gw.url} (data in ${cfg.dataDir}); stop with Ctrl-C: running sessions keep running`,
    );
    let closing = false;
    const stop = async () => {
      if (closing) return;
      closing = true;
      await gw.close();
      process.exit(0);
    };
    process.on('SIGINT', () => void stop());
    process.on('SIGTERM', () => void stop());
  });

const config = program.command('config').description('configuration tools');
config
  .command('check')
  .description(
    'validate a configuration file without starting anything, and check that users can read the agent',
  )
  .argument('[file]', 'the file (default: --config or ATRIUM_CONFIG)')
  .addOption(configOption())
  .action(async (file: string | undefined, opts: { config?: string }) => {
    let cfg: ReturnType<typeof loadConfig>;
    try {
      cfg = loadConfig(file ?? opts.config ?? process.env.ATRIUM_CONFIG);
    } catch (e) {
      if (e instanceof ConfigError) {
        process.stderr.write(`${e.message}\n`);
        process.exit(2);
      }
      throw e;
    }
    const problems = checkAgentPaths(cfg);
    for (const p of problems) process.stdout.write(`${p.error ? 'error' : 'note'}: ${p.message}\n`);
    if (problems.some((p) => p.error)) {
      process.stderr.write(`${cfg.source}: sessions cannot start (see above)\n`);
      process.exit(2);
    }
    // Reaching the database is part of the check: a wrong URL, password or host fails here, not at start.
    const reached = await probeDb(databaseUrl(cfg));
    if (!reached.startsWith('SQLite')) process.stdout.write(`database.url: ${reached} answers\n`);
    process.stdout.write(
      `${cfg.source}: OK (${cfg.clusters.length} cluster(s), ${cfg.appCatalogue.length} app(s))\n`,
    );
  });

const user = program.command('user').description('local accounts');
user
  .command('add')
  .description('create a local account mapped to a Unix user')
  .argument('<name>', 'user name to sign in with')
  .addOption(configOption())
  .addOption(dataDirOption())
  .option('--unix-user <name>', 'Unix user the sessions run as (default: the same name)')
  .option('--admin', 'make an administrator')
  .option('--password-stdin', 'read the password from standard input (else one is generated and printed)')
  .action(
    async (
      name: string,
      opts: {
        config?: string;
        dataDir?: string;
        unixUser?: string;
        admin?: boolean;
        passwordStdin?: boolean;
      },
    ) => {
      const cfg = cliConfig(opts);
      const unix = opts.unixUser ?? name;
      if (!isValidUnixName(unix) || !(await lookupUnixUser(unix))) {
        process.stderr.write(`unix-user: there is no Unix user "${unix}" on this machine\n`);
        process.exit(2);
      }
      const db = await openCliDb(cfg, usersDatabase);
      if (await findUserByName(db, name)) {
        process.stderr.write(`name: the account "${name}" exists already\n`);
        process.exit(2);
      }
      const password = opts.passwordStdin ? await readStdin() : generatePassword();
      if (password.length < 8) {
        process.stderr.write('password: at least 8 characters\n');
        process.exit(2);
      }
      await createUser(db, {
        username: name,
        unixUser: unix,
        passwordHash: await hashPassword(password),
        isAdmin: !!opts.admin,
      });
      process.stdout.write(
        `created ${opts.admin ? 'administrator ' : ''}"${name}" (Unix user ${unix})${opts.passwordStdin ? '' : `; password: ${password}`}\n`,
      );
      await db.destroy();
    },
  );

user
  .command('passwd')
  .description('set a local account password')
  .argument('<name>')
  .addOption(configOption())
  .addOption(dataDirOption())
  .option('--password-stdin', 'read the password from standard input (else one is generated and printed)')
  .action(async (name: string, opts: { config?: string; dataDir?: string; passwordStdin?: boolean }) => {
    const cfg = cliConfig(opts);
    const file = databaseFile(cfg);
    if (file !== null && !fs.existsSync(file)) {
      process.stderr.write(`name: no account "${name}": there is no database at ${file}\n`);
      process.exit(2);
    }
    const db = await openCliDb(cfg, usersDatabase);
    const row = await findUserByName(db, name);
    if (!row) {
      process.stderr.write(`name: no account "${name}"\n`);
      process.exit(2);
    }
    const password = opts.passwordStdin ? await readStdin() : generatePassword();
    await updateUser(db, row.id, { passwordHash: await hashPassword(password) });
    process.stdout.write(`password of "${name}" changed${opts.passwordStdin ? '' : `: ${password}`}\n`);
    await db.destroy();
  });

registerExtraCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // A database that cannot be used is a setting to fix, not a bug: its one line, no stack trace.
  if (!(e instanceof DbOpenError)) throw e;
  process.stderr.write(`${e.message}\n`);
  process.exit(2);
}
