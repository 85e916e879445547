// Site directory accounts end to end: Debian's slapd on 127.0.0.1 (scripts/ldap.sh, started and
// stopped here), the gateway binding as the user (search-then-bind with a service account, or a DN
// template), groups from the directory mapped to access rules, filter/DN injection refused.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { echoApps } from '../helpers/echo-app.ts';
import { createTestGateway, freePort, ROOT, type TestGateway } from '../helpers/gateway.ts';

const BASE = 'dc=atrium,dc=test';
let ldapPort = 0;
let ldapDir = '';
let search: TestGateway;
let template: TestGateway;
const echo = echoApps();

function ldap(cmd: 'up' | 'down'): string {
  return execFileSync('bash', [path.join(ROOT, 'scripts', 'ldap.sh'), cmd], {
    encoding: 'utf8',
    env: { ...process.env, LDAP_PORT: String(ldapPort), LDAP_DIR: ldapDir },
  });
}

const rules = `  allowGroups: [hpcusers]
  adminGroups: [hpcadmins]
  loginAttemptsPerMinute: 100
`;

beforeAll(async () => {
  ldapPort = await freePort();
  ldapDir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-ldap-'));
  ldap('up');
  search = await createTestGateway({
    name: 'ldap-search',
    yaml: `auth:
${rules}  ldap:
    url: ldap://127.0.0.1:${ldapPort}
    searchBase: ou=people,${BASE}
    searchFilter: '(&(objectClass=posixAccount)(uid={username}))'
    bindDn: cn=reader,ou=services,${BASE}
    bindPassword: reader-pw
    groupSearchBase: ou=groups,${BASE}
    timeoutSeconds: 3
${echo.yaml}`,
  });
  template = await createTestGateway({
    name: 'ldap-dn',
    users: [{ name: 'bob', unixUser: 'bob' }],
    yaml: `auth:
${rules}  ldap:
    url: ldap://127.0.0.1:${ldapPort}
    userDnTemplate: uid={username},ou=people,${BASE}
    groupSearchBase: ou=groups,${BASE}
`,
  });
  await search.start();
  await template.start();
});

afterAll(async () => {
  await search?.stop();
  await template?.stop();
  if (ldapDir) ldap('down');
});

describe('LDAP sign-in (search with a service account, then bind as the user)', () => {
  it('signs in directory users, with their groups mapped to access rules', async () => {
    const alice = new Client(search.url);
    const r = await alice.login('alice', 'alice-ldap-pw');
    expect(r.status).toBe(200);
    expect(((await r.json()) as { user: unknown }).user).toMatchObject({
      username: 'alice',
      unixUser: 'alice',
      source: 'ldap',
      isAdmin: false,
      groups: ['hpcusers'],
    });
    const bob = new Client(search.url);
    const rb = await bob.login('bob', 'bob-ldap-pw');
    expect(((await rb.json()) as { user: { isAdmin: boolean } }).user.isAdmin).toBe(true);
    // carol is in the directory but in none of the allowed groups.
    const carol = await new Client(search.url).login('carol', 'carol-ldap-pw');
    expect(carol.status).toBe(403);
    expect(((await carol.json()) as { error: string }).error).toMatch(/not in a group/);
  });

  it('refuses wrong and empty passwords, and filter injection in the user name', async () => {
    const c = new Client(search.url);
    expect((await c.login('alice', 'wrong')).status).toBe(401);
    expect((await c.login('alice', '')).status).toBe(400);
    for (const name of ['*', 'al*', 'alice)(uid=*', '*)(|(objectClass=*', 'alice\\2a', 'nobody-here']) {
      const r = await c.login(name, 'alice-ldap-pw');
      expect(r.status, JSON.stringify(name)).toBe(401);
    }
    // A NUL never reaches the directory: refused up front, naming the field.
    const nul = await c.login('alice\u0000', 'alice-ldap-pw');
    expect(nul.status).toBe(400);
    expect(await nul.json()).toMatchObject({ field: 'username' });
    expect(c.cookie).toBe('');
  });

  it("runs the user's sessions as the directory's uid", async () => {
    const c = new Client(search.url);
    await c.login('alice', 'alice-ldap-pw');
    const r = await c.post('/api/sessions', {
      cluster: 'local',
      app: 'echo',
      cores: 1,
      memoryGb: 1,
      hours: 1,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const s = await waitForState(c, (r.body as { session: SessionView }).session.id, ['running']);
    const out = execFileSync('ps', ['-eo', 'user=,args='], { encoding: 'utf8' });
    const line = out.split('\n').find((l) => l.includes('echo.py') && l.includes(s.id));
    expect(line?.trim().split(/\s+/)[0]).toBe('alice');
    await c.del(`/api/sessions/${s.id}`);
    await waitForState(c, s.id, ['ended'], 30_000);
  });

  it('records sign-ins and failures in the audit log', async () => {
    const admin = new Client(search.url);
    await admin.login('bob', 'bob-ldap-pw');
    const r = await admin.get('/api/admin/audit?action=signin&limit=100');
    const entries = (
      r.body as { entries: { actor: string; ok: boolean; details: Record<string, unknown> }[] }
    ).entries;
    expect(entries.some((e) => e.actor === 'alice' && e.ok && e.details.method === 'ldap')).toBe(true);
    expect(entries.some((e) => e.actor === 'carol' && !e.ok)).toBe(true);
    expect(
      entries.some((e) => e.actor === 'alice' && !e.ok && e.details.why === 'wrong user name or password'),
    ).toBe(true);
    // Not for non-admins.
    const alice = new Client(search.url);
    await alice.login('alice', 'alice-ldap-pw');
    expect((await alice.get('/api/admin/audit')).status).toBe(403);
  });
});

describe('LDAP sign-in with a DN template', () => {
  it('binds at the templated DN, escaping the name', async () => {
    const c = new Client(template.url);
    expect((await c.login('alice', 'alice-ldap-pw')).status).toBe(200);
    for (const name of ['alice,ou=people', 'uid=alice', 'alice\\', '#alice', 'alice+cn=x']) {
      expect((await new Client(template.url).login(name, 'alice-ldap-pw')).status, name).toBe(401);
    }
  });

  it('never merges a directory identity into a local account of the same name', async () => {
    const r = await new Client(template.url).login('bob', 'bob-ldap-pw');
    expect(r.status).toBe(403);
    expect(((await r.json()) as { error: string }).error).toMatch(/another kind of account/);
    // The local account itself still signs in with its own password.
    expect((await new Client(template.url).login('bob', template.passwords.bob!)).status).toBe(200);
  });

  it('says the directory is unavailable (503) rather than "wrong password" when it is down', async () => {
    ldap('down');
    const r = await new Client(template.url).login('alice', 'alice-ldap-pw');
    expect(r.status).toBe(503);
    ldapDir = '';
  });
});
