// Site directory accounts: the password is checked by binding to the directory as the user (never by
// reading or comparing hashes), either at a DN made from a template or at the DN that a search with a
// service account finds. Every value put into a filter or a DN is escaped (RFC 4515, RFC 4514).
import fs from 'node:fs';
import type tls from 'node:tls';
import { Client, type Entry, InvalidCredentialsError } from 'ldapts';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { isValidUnixName, lookupUnixUser } from '../system/users.ts';
import { type PasswordCredentials, PasswordMethod, type SignedIn, SignInUnavailable } from './sign-in.ts';

export type LdapSettings = NonNullable<Config['auth']['ldap']>;

/** Escapes a value for an LDAP search filter (RFC 4515 section 3): `*`, `(`, `)`, `\`, NUL and controls. */
export function escapeFilterValue(value: string): string {
  let out = '';
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    if (ch === '*' || ch === '(' || ch === ')' || ch === '\\' || c < 0x20 || c === 0x7f) {
      out += `\\${c.toString(16).padStart(2, '0')}`;
    } else {
      out += ch;
    }
  }
  return out;
}

/** Escapes a value for one attribute value of a DN (RFC 4514 section 2.4). */
export function escapeDnValue(value: string): string {
  let out = '';
  const chars = [...value];
  chars.forEach((ch, i) => {
    const c = ch.codePointAt(0)!;
    if (c === 0) out += '\\00';
    else if (c < 0x20 || c === 0x7f) out += `\\${c.toString(16).padStart(2, '0')}`;
    else if ('"+,;<>\\='.includes(ch)) out += `\\${ch}`;
    else if ((ch === ' ' || ch === '#') && i === 0) out += `\\${ch}`;
    else if (ch === ' ' && i === chars.length - 1) out += '\\ ';
    else out += ch;
  });
  return out;
}

/** Fills {name} placeholders of a template with values that are already escaped for their context. */
export function fillTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{([a-z]+)\}/g, (m, k: string) => (k in values ? values[k]! : m));
}

/** A user name as typed: not empty, short, printable. Anything else is refused before the directory sees it. */
export function plausibleUsername(name: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  return name.length > 0 && name.length <= 100 && !/[\u0000-\u001f\u007f]/.test(name);
}

function first(v: Entry[string] | undefined): string | undefined {
  if (v === undefined) return undefined;
  const x = Array.isArray(v) ? v[0] : v;
  if (x === undefined) return undefined;
  return Buffer.isBuffer(x) ? x.toString('utf8') : String(x);
}

function all(v: Entry[string] | undefined): string[] {
  if (v === undefined) return [];
  const xs = Array.isArray(v) ? v : [v];
  return xs.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
}

/** A password sign-in checked by the directory. Its groups are read at sign-in; nothing is kept to renew. */
export class LdapSignIn extends PasswordMethod {
  readonly name = 'ldap';
  protected readonly label: string;
  private readonly tlsOptions: tls.ConnectionOptions;

  constructor(
    private readonly cfg: LdapSettings,
    private readonly log: Logger,
  ) {
    super();
    this.label = cfg.label;
    if (!cfg.userDnTemplate && !cfg.searchBase) {
      throw new Error('auth.ldap: set userDnTemplate, or searchBase (with bindDn/bindPassword)');
    }
    if (cfg.userDnTemplate && !cfg.userDnTemplate.includes('{username}')) {
      throw new Error('auth.ldap.userDnTemplate must contain {username}');
    }
    this.tlsOptions = {
      minVersion: 'TLSv1.2',
      ...(cfg.caFile ? { ca: [fs.readFileSync(cfg.caFile)] } : {}),
    };
  }

  private async connect(): Promise<Client> {
    const client = new Client({
      url: this.cfg.url,
      timeout: this.cfg.timeoutSeconds * 1000,
      connectTimeout: this.cfg.timeoutSeconds * 1000,
      // ldapts speaks TLS from the start whenever tlsOptions is given: only for ldaps:// URLs.
      ...(this.cfg.url.startsWith('ldaps://') ? { tlsOptions: this.tlsOptions } : {}),
    });
    if (this.cfg.startTls) {
      const host = new URL(this.cfg.url).hostname;
      await client.startTLS({ ...this.tlsOptions, servername: host });
    }
    return client;
  }

  private attributes(): string[] {
    return [this.cfg.usernameAttribute, 'uidNumber', 'cn', 'displayName', 'mail'];
  }

  async finish({ username, password }: PasswordCredentials): Promise<SignedIn<never> | null> {
    // An empty password is an "unauthenticated bind", which directories answer with success (RFC 4513 5.1.2).
    if (!password || password.length > 1000 || !plausibleUsername(username)) return null;
    let client: Client | undefined;
    try {
      client = await this.connect();
      let dn: string;
      let entry: Entry | undefined;
      if (this.cfg.userDnTemplate) {
        dn = fillTemplate(this.cfg.userDnTemplate, { username: escapeDnValue(username) });
        await client.bind(dn, password);
        const r = await client.search(dn, {
          scope: 'base',
          filter: '(objectClass=*)',
          attributes: this.attributes(),
        });
        entry = r.searchEntries[0];
      } else {
        if (this.cfg.bindDn) await this.serviceBind(client);
        const filter = fillTemplate(this.cfg.searchFilter, { username: escapeFilterValue(username) });
        const r = await client.search(this.cfg.searchBase!, {
          scope: 'sub',
          filter,
          attributes: this.attributes(),
          sizeLimit: 2,
        });
        // Exactly one entry, or nobody: a filter that matches several people names no one.
        if (r.searchEntries.length !== 1) return null;
        entry = r.searchEntries[0]!;
        dn = entry.dn;
        await client.bind(dn, password);
      }
      if (!entry) return null;
      const uid = first(entry[this.cfg.usernameAttribute]);
      if (!uid || !isValidUnixName(uid)) {
        this.log.warn({ dn }, 'ldap: the entry has no usable user name attribute; sign-in refused');
        return null;
      }
      const uidNumber = first(entry.uidNumber);
      if (uidNumber !== undefined) {
        const local = await lookupUnixUser(uid);
        if (local && local.uid !== Number(uidNumber)) {
          this.log.error(
            { user: uid, directoryUid: uidNumber, localUid: local.uid },
            'ldap: the directory and this host disagree on the uid number; sign-in refused',
          );
          return null;
        }
      }
      let groups: string[] = [];
      if (this.cfg.groupSearchBase) {
        if (this.cfg.bindDn) await this.serviceBind(client);
        const filter = fillTemplate(this.cfg.groupFilter, {
          username: escapeFilterValue(uid),
          dn: escapeFilterValue(dn),
        });
        const r = await client.search(this.cfg.groupSearchBase, {
          scope: 'sub',
          filter,
          attributes: [this.cfg.groupNameAttribute],
          sizeLimit: 1000,
        });
        groups = [...new Set(r.searchEntries.flatMap((e) => all(e[this.cfg.groupNameAttribute])))];
      }
      return {
        identity: {
          username: uid,
          unixUser: uid,
          groups,
          displayName: first(entry.displayName) ?? first(entry.cn) ?? null,
          email: first(entry.mail) ?? null,
          source: 'ldap',
        },
      };
    } catch (e) {
      if (e instanceof InvalidCredentialsError) return null;
      if (e instanceof SignInUnavailable) throw e;
      this.log.error({ err: (e as Error).message, url: this.cfg.url }, 'ldap: directory error');
      throw new SignInUnavailable('ldap', 'the directory cannot be reached');
    } finally {
      await client?.unbind().catch(() => undefined);
    }
  }

  private async serviceBind(client: Client): Promise<void> {
    try {
      await client.bind(this.cfg.bindDn!, this.cfg.bindPassword ?? '');
    } catch (e) {
      this.log.error({ err: (e as Error).message, bindDn: this.cfg.bindDn }, 'ldap: the service bind failed');
      throw new SignInUnavailable('ldap', 'the directory refused the service account');
    }
  }
}
