import fs from 'node:fs';
import { Command, Option } from 'commander';
import { generatePassword, hashPassword } from '../auth/passwords.ts';
import { ConfigError, databaseUrl, type LoadedConfig, loadConfig } from '../config/load.ts';
import { openDb } from '../db/index.ts';
import { createUser, findUserByName, updateUser } from '../db/users.ts';
import { startGateway } from '../server/gateway.ts';
import { ensurePackages, JUPYTER_NEED } from '../system/packages.ts';
import { isValidUnixName, lookupUnixUser } from '../system/users.ts';
import { registerExtraCommands } from './extra.ts';

const program = new Command();
program.name('atrium').description('Atrium: interactive computing gateway for HPC clusters');

function configFrom(opts: { config?: string }): LoadedConfig {
  try {
    return loadConfig(opts.config ?? process.env.ATRIUM_CONFIG);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

const configOption = new Option('-c, --config <file>', 'configuration file (YAML); env ATRIUM_CONFIG');

program
  .command('serve')
  .description('run the gateway')
  .addOption(configOption)
  .option('--host <host>', 'listen address (overrides server.host)')
  .option('--port <port>', 'listen port (overrides server.port)')
  .option('--data-dir <dir>', 'data directory (overrides dataDir)')
  .action(async (opts: { config?: string; host?: string; port?: string; dataDir?: string }) => {
    const cfg = configFrom(opts);
    if (opts.host) cfg.server.host = opts.host;
    if (opts.port) cfg.server.port = Number(opts.port);
    if (opts.dataDir) {
      fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
      cfg.dataDir = fs.realpathSync.native(opts.dataDir);
    }
    const print = (l: string) => process.stdout.write(`${l}\n`);
    if (
      cfg.installPackages &&
      cfg.clusters.some((c) => c.backend === 'local') &&
      cfg.appCatalogue.some((a) => a.id === 'jupyter')
    ) {
      ensurePackages([JUPYTER_NEED], print);
    }
    const gw = await startGateway(cfg, { print });
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
  .description('validate a configuration file without starting anything')
  .argument('[file]', 'the file (default: --config or ATRIUM_CONFIG)')
  .action((file?: string) => {
    try {
      const cfg = loadConfig(file ?? process.env.ATRIUM_CONFIG);
      process.stdout.write(
        `${cfg.source}: OK (${cfg.clusters.length} cluster(s), ${cfg.appCatalogue.length} app(s))\n`,
      );
    } catch (e) {
      if (e instanceof ConfigError) {
        process.stderr.write(`${e.message}\n`);
        process.exit(2);
      }
      throw e;
    }
  });

const user = program.command('user').description('local accounts');
user
  .command('add')
  .description('create a local account mapped to a Unix user')
  .argument('<name>', 'user name to sign in with')
  .addOption(configOption)
  .option('--unix-user <name>', 'Unix user the sessions run as (default: the same name)')
  .option('--admin', 'make an administrator')
  .option('--password-stdin', 'read the password from standard input (else one is generated and printed)')
  .action(
    async (
      name: string,
      opts: { config?: string; unixUser?: string; admin?: boolean; passwordStdin?: boolean },
    ) => {
      const cfg = configFrom(opts);
      const unix = opts.unixUser ?? name;
      if (!isValidUnixName(unix) || !(await lookupUnixUser(unix))) {
        process.stderr.write(`unix-user: there is no Unix user "${unix}" on this machine\n`);
        process.exit(2);
      }
      const db = await openDb(databaseUrl(cfg));
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
  .addOption(configOption)
  .option('--password-stdin', 'read the password from standard input (else one is generated and printed)')
  .action(async (name: string, opts: { config?: string; passwordStdin?: boolean }) => {
    const cfg = configFrom(opts);
    const db = await openDb(databaseUrl(cfg));
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

await program.parseAsync(process.argv);
