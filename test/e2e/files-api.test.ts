// The Files API against real Unix users (alice, bob of scripts/cluster.sh), run as root like a site's
// gateway: file operations run as the signed-in user (what alice makes is hers; bob's mode-700 home
// stays closed to her), and every adversarial try is refused with a 4xx that names the problem,
// changes nothing and lands in the audit log: bob against alice's paths, "..", encoded and
// double-encoded traversal, links to /etc and to bob's home, a folder swapped for a link during an
// upload, a 0-byte name, NUL, an upload one byte over the limit, a cut-off upload, a stale save.
// Names with quotes, newlines, unicode and shell metacharacters work as ordinary names.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../helpers/client.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { homeOf } from '../helpers/jobs-cluster.ts';
import { until } from '../helpers/wait.ts';

const asRoot = process.getuid?.() === 0;
const haveUsers = asRoot && ['alice', 'bob'].every((u) => fs.existsSync(homeOf(u)));
if (!haveUsers)
  console.warn('[files-api e2e] SKIPPED: needs root and the users alice and bob (scripts/cluster.sh up)');

const LIMIT = 1024 * 1024; // files.maxUploadMb: 1

function idOf(user: string): { uid: number; gid: number } {
  return {
    uid: Number(execFileSync('id', ['-u', user], { encoding: 'utf8' })),
    gid: Number(execFileSync('id', ['-g', user], { encoding: 'utf8' })),
  };
}

/** Runs a command as `user` (argv, no shell of ours). */
function as(user: string, argv: string[]): string {
  return execFileSync('runuser', ['-u', user, '--', ...argv], { encoding: 'utf8' });
}

describe.skipIf(!haveUsers)('Files API as the signed-in Unix user', () => {
  let gw: TestGateway;
  let a: Client;
  let b: Client;
  const aliceHome = homeOf('alice');
  const bobHome = homeOf('bob');
  const dir = path.join(aliceHome, 'files-api-test');
  const outside = '/tmp/atrium-files-outside';
  const bobSecret = path.join(bobHome, 'files-api-secret.txt');
  const q = (p: string) => encodeURIComponent(p);
  let refusals = 0;

  /** A request that must be refused: status and a message naming the problem; counted for the audit check. */
  async function refused(c: Client, method: string, url: string, body: unknown, status: number, why: RegExp) {
    const r = await c.json(method, url, body);
    expect(r.status, `${method} ${url}: ${JSON.stringify(r.body)}`).toBe(status);
    expect(String((r.body as { error?: string }).error)).toMatch(why);
    refusals++;
    return r;
  }

  /** PUT of raw bytes (an upload or a save), as the page sends them. */
  function put(c: Client, url: string, data: Buffer, headers: Record<string, string> = {}) {
    return fetch(`${gw.url}${url}`, {
      method: 'PUT',
      headers: {
        cookie: c.cookie,
        'x-csrf-token': c.csrf,
        'content-type': 'application/octet-stream',
        ...headers,
      },
      body: new Uint8Array(data),
    });
  }

  beforeAll(async () => {
    for (const p of [dir, outside]) fs.rmSync(p, { recursive: true, force: true });
    as('alice', ['mkdir', '-p', path.join(dir, 'race'), path.join(dir, 'names')]);
    as('alice', ['ln', '-s', '/etc', path.join(dir, 'etc')]);
    as('alice', ['ln', '-s', bobHome, path.join(dir, 'bobhome')]);
    as('alice', ['ln', '-s', '/etc/passwd', path.join(dir, 'pw')]);
    // A folder alice may write to outside her roots: the swap test shows nothing lands there.
    as('alice', ['mkdir', '-p', outside]);
    as('bob', ['sh', '-c', `echo bob-only > '${bobSecret}'`]);
    gw = await createTestGateway({
      name: 'files-api',
      users: [{ name: 'alice' }, { name: 'bob' }],
      yaml: [
        'files:',
        '  maxUploadMb: 1',
        '  maxEditKb: 64',
        '  roots:',
        '    - { name: Home, path: "~" }',
        '    - { name: Homes, path: /home }',
        'clusters:',
        '  - { name: local, backend: local, title: This machine }',
        // A cluster whose nodes have file systems of their own: the page says its files are not shown.
        '  - { name: far, backend: local, title: Far away, filesHere: false }',
      ].join('\n'),
    });
    await gw.start();
    a = new Client(gw.url);
    expect((await a.login('alice', gw.passwords.alice!)).status).toBe(200);
    b = new Client(gw.url);
    expect((await b.login('bob', gw.passwords.bob!)).status).toBe(200);
  });

  afterAll(async () => {
    await gw?.stop();
    for (const p of [dir, outside, bobSecret]) fs.rmSync(p, { recursive: true, force: true });
    if (gw?.dir) fs.rmSync(gw.dir, { recursive: true, force: true });
  });

  it('lists the roots with $HOME expanded, and what alice creates belongs to her Unix user', async () => {
    const roots = await a.get('/api/files/roots');
    expect(roots.status).toBe(200);
    expect((roots.body as { roots: { path: string; ok: boolean }[] }).roots).toEqual([
      expect.objectContaining({ name: 'Home', path: aliceHome, ok: true }),
      expect.objectContaining({ name: 'Homes', path: '/home', ok: true }),
    ]);
    expect((roots.body as { clusters: unknown[] }).clusters).toEqual([
      { name: 'local', title: 'This machine', filesHere: true },
      { name: 'far', title: 'Far away', filesHere: false },
    ]);
    expect((await a.post('/api/files/mkdir', { path: dir, name: 'made' })).status).toBe(201);
    const up = await put(a, `/api/files/upload?path=${q(dir)}&name=hello.txt`, Buffer.from('hello\n'));
    expect(up.status).toBe(201);
    const { uid, gid } = idOf('alice');
    for (const p of ['made', 'hello.txt']) {
      const st = fs.statSync(path.join(dir, p));
      expect([st.uid, st.gid]).toEqual([uid, gid]);
    }
    expect(fs.readFileSync(path.join(dir, 'hello.txt'), 'utf8')).toBe('hello\n');
    const list = await a.get(`/api/files/list?path=${q(dir)}`);
    const names = (list.body as { entries: { name: string; type: string; target?: string }[] }).entries;
    expect(names.map((e) => e.name).sort()).toEqual([
      'bobhome',
      'etc',
      'hello.txt',
      'made',
      'names',
      'pw',
      'race',
    ]);
    expect(names.find((e) => e.name === 'etc')).toMatchObject({ type: 'link', target: '/etc' });
  });

  it("bob's files under his mode-700 home are not listed to alice (her own permissions decide)", async () => {
    const home = await a.get('/api/files/list?path=/home');
    expect(home.status).toBe(200);
    await refused(a, 'GET', `/api/files/list?path=${q(bobHome)}`, undefined, 403, /permission denied/);
    await refused(a, 'GET', `/api/files/download?path=${q(bobSecret)}`, undefined, 403, /permission denied/);
    await refused(a, 'GET', `/api/files/text?path=${q(bobSecret)}`, undefined, 403, /permission denied/);
  });

  it("bob against alice's paths: refused, nothing changed", async () => {
    const file = path.join(dir, 'hello.txt');
    await refused(b, 'GET', `/api/files/list?path=${q(dir)}`, undefined, 403, /permission denied/);
    await refused(b, 'GET', `/api/files/download?path=${q(file)}`, undefined, 403, /permission denied/);
    await refused(b, 'DELETE', `/api/files?path=${q(file)}`, undefined, 403, /permission denied/);
    await refused(
      b,
      'POST',
      '/api/files/move',
      { path: file, name: 'bob-was-here' },
      403,
      /permission denied/,
    );
    await refused(b, 'POST', '/api/files/mkdir', { path: dir, name: 'bobdir' }, 403, /permission denied/);
    const up = await put(b, `/api/files/upload?path=${q(dir)}&name=bob.txt`, Buffer.from('x'));
    expect(up.status).toBe(403);
    refusals++;
    expect(fs.readFileSync(file, 'utf8')).toBe('hello\n');
    expect(fs.readdirSync(dir).sort()).toEqual([
      'bobhome',
      'etc',
      'hello.txt',
      'made',
      'names',
      'pw',
      'race',
    ]);
  });

  it('refuses paths outside the roots, "..", encoded and double-encoded traversal, NUL and control characters', async () => {
    await refused(a, 'GET', '/api/files/list?path=/etc', undefined, 403, /path: outside your folders/);
    await refused(a, 'GET', '/api/files/download?path=/etc/shadow', undefined, 403, /outside your folders/);
    await refused(
      a,
      'GET',
      `/api/files/list?path=${q(`${dir}/../../bob`)}`,
      undefined,
      400,
      /"\.\." segment/,
    );
    // Encoded once in the query: decoded to "..", refused as such.
    await refused(a, 'GET', `/api/files/list?path=${aliceHome}/%2E%2E/bob`, undefined, 400, /"\.\." segment/);
    // Double-encoded: "%2e%2e%2f" survives one decoding; it is no name.
    await refused(
      a,
      'GET',
      `/api/files/list?path=${aliceHome}/%252e%252e%252fbob`,
      undefined,
      400,
      /percent-encoded/,
    );
    await refused(
      a,
      'GET',
      `/api/files/download?path=${aliceHome}/%252E%252E/%252E%252E/etc/passwd`,
      undefined,
      400,
      /percent-encoded/,
    );
    await refused(a, 'GET', '/api/files/list?path=relative/dir', undefined, 400, /absolute path/);
    await refused(a, 'GET', `/api/files/list?path=${aliceHome}//x`, undefined, 400, /empty segment/);
    await refused(a, 'GET', `/api/files/list?path=${q(`${dir}\0/x`)}`, undefined, 400, /NUL/);
    await refused(a, 'GET', `/api/files/list?path=${q(`${dir}/a\rb`)}`, undefined, 400, /control character/);
    // An encoded slash in the route's own path never reaches a handler.
    const r = await a.req('GET', `/api/files%2Flist?path=${q(dir)}`);
    expect(r.status).toBe(400);
    expect(await r.text()).toMatch(/encoded slash/);
  });

  it("refuses links to /etc and to bob's home in every operation, and creates nothing through them", async () => {
    await refused(
      a,
      'GET',
      `/api/files/list?path=${q(`${dir}/etc`)}`,
      undefined,
      403,
      /symbolic link \(to \/etc\)/,
    );
    await refused(
      a,
      'GET',
      `/api/files/download?path=${q(`${dir}/etc/passwd`)}`,
      undefined,
      403,
      /symbolic link/,
    );
    await refused(
      a,
      'GET',
      `/api/files/download?path=${q(`${dir}/pw`)}`,
      undefined,
      403,
      /symbolic link \(to \/etc\/passwd\)/,
    );
    await refused(a, 'GET', `/api/files/text?path=${q(`${dir}/pw`)}`, undefined, 403, /symbolic link/);
    await refused(
      a,
      'GET',
      `/api/files/list?path=${q(`${dir}/bobhome`)}`,
      undefined,
      403,
      /symbolic link \(to \/home\/bob\)/,
    );
    await refused(
      a,
      'POST',
      '/api/files/mkdir',
      { path: `${dir}/etc`, name: 'atrium-pwned' },
      403,
      /symbolic link/,
    );
    await refused(
      a,
      'POST',
      '/api/files/move',
      { path: `${dir}/hello.txt`, to: `${dir}/bobhome` },
      403,
      /symbolic link/,
    );
    const up = await put(a, `/api/files/upload?path=${q(`${dir}/etc`)}&name=atrium-pwned`, Buffer.from('x'));
    expect(up.status).toBe(403);
    expect(((await up.json()) as { error: string }).error).toMatch(/symbolic link/);
    refusals++;
    expect(fs.existsSync('/etc/atrium-pwned')).toBe(false);
    expect(fs.existsSync(path.join(bobHome, 'hello.txt'))).toBe(false);
    // Deleting a link removes the link, never what it points to.
    expect((await a.del(`/api/files?path=${q(`${dir}/pw`)}`)).status).toBe(200);
    expect(fs.existsSync('/etc/passwd')).toBe(true);
  });

  it('a folder swapped for a link to elsewhere during an upload: refused, nothing written anywhere', async () => {
    const race = path.join(dir, 'race');
    const size = 256 * 1024;
    const res = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        `${gw.url}/api/files/upload?path=${q(race)}&name=swapped.bin`,
        {
          method: 'PUT',
          headers: {
            cookie: a.cookie,
            'x-csrf-token': a.csrf,
            'content-type': 'application/octet-stream',
            'content-length': String(size),
          },
        },
        (r) => {
          let body = '';
          r.on('data', (d) => {
            body += d;
          });
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.write(Buffer.alloc(size / 2, 1));
      // The helper has opened the folder and its temporary file: now swap the folder for a link.
      void until('the upload to begin', () =>
        fs.readdirSync(race).some((n) => n.startsWith('.atrium-upload-')),
      )
        .then(() => {
          as('alice', ['mv', race, `${race}-moved`]);
          as('alice', ['ln', '-s', outside, race]);
          req.end(Buffer.alloc(size / 2, 2));
        })
        .catch(reject);
    });
    const r = await res;
    expect(r.status).toBe(409);
    expect(r.body).toMatch(/moved, removed or replaced/);
    refusals++;
    expect(fs.readdirSync(outside)).toEqual([]);
    await until('the temporary file to go', () => fs.readdirSync(`${race}-moved`).length === 0);
  });

  it('refuses a 0-byte name, a name with "/", an upload of limit + 1 byte and a cut-off upload; nothing is created', async () => {
    await refused(
      a,
      'POST',
      '/api/files/mkdir',
      { path: dir, name: '' },
      400,
      /name: an empty name \(a name of 0 bytes\)/,
    );
    await refused(
      a,
      'POST',
      '/api/files/mkdir',
      { path: dir, name: 'a/b' },
      400,
      /name: may not contain "\/"/,
    );
    await refused(
      a,
      'POST',
      '/api/files/move',
      { path: `${dir}/hello.txt`, name: '..' },
      400,
      /"\.\." segment/,
    );
    const zero = await put(a, `/api/files/upload?path=${q(dir)}&name=`, Buffer.from('x'));
    expect(zero.status).toBe(400);
    refusals++;
    // The declared size decides, before any byte is written.
    let overReq: http.ClientRequest | undefined;
    const over = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      overReq = http.request(
        `${gw.url}/api/files/upload?path=${q(dir)}&name=big.bin`,
        {
          method: 'PUT',
          headers: {
            cookie: a.cookie,
            'x-csrf-token': a.csrf,
            'content-type': 'application/octet-stream',
            'content-length': String(LIMIT + 1),
          },
        },
        (r) => {
          let body = '';
          r.on('data', (d) => {
            body += d;
          });
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
        },
      );
      overReq.on('error', reject);
      overReq.write(Buffer.alloc(1024));
    });
    overReq?.destroy();
    expect(over.status).toBe(413);
    expect(over.body).toMatch(new RegExp(`file: ${LIMIT + 1} bytes, over the limit of ${LIMIT} bytes`));
    refusals++;
    // Exactly the limit is fine.
    expect(
      (await put(a, `/api/files/upload?path=${q(dir)}&name=limit.bin`, Buffer.alloc(LIMIT, 7))).status,
    ).toBe(201);
    expect(fs.statSync(path.join(dir, 'limit.bin')).size).toBe(LIMIT);
    // A cut-off upload leaves no file under its name (nor a temporary one).
    await new Promise<void>((resolve) => {
      const req = http.request(`${gw.url}/api/files/upload?path=${q(dir)}&name=cut.bin`, {
        method: 'PUT',
        headers: {
          cookie: a.cookie,
          'x-csrf-token': a.csrf,
          'content-type': 'application/octet-stream',
          'content-length': String(512 * 1024),
        },
      });
      req.on('error', () => resolve());
      req.write(Buffer.alloc(100 * 1024, 3), () => {
        setImmediate(() => {
          req.destroy();
          resolve();
        });
      });
    });
    await until('the cut-off upload to be cleaned up', () =>
      fs.readdirSync(dir).every((n) => !n.startsWith('.atrium-upload-')),
    );
    expect(fs.existsSync(path.join(dir, 'cut.bin'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'big.bin'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'a'))).toBe(false);
  });

  it('writes need the CSRF header and a same-site origin; API tokens need the files scope', async () => {
    const noCsrf = await fetch(`${gw.url}/api/files/upload?path=${q(dir)}&name=csrf.txt`, {
      method: 'PUT',
      headers: { cookie: a.cookie, 'content-type': 'application/octet-stream' },
      body: 'x',
    });
    expect(noCsrf.status).toBe(403);
    const foreign = await put(a, `/api/files/upload?path=${q(dir)}&name=csrf.txt`, Buffer.from('x'), {
      origin: 'https://evil.example',
    });
    expect(foreign.status).toBe(403);
    expect(fs.existsSync(path.join(dir, 'csrf.txt'))).toBe(false);
    const token = async (scopes: string[]) =>
      ((await a.post('/api/tokens', { name: `files ${scopes.join(' ')}`, scopes })).body as { token: string })
        .token;
    const read = await token(['read']);
    const files = await token(['files']);
    const list = (t: string) =>
      fetch(`${gw.url}/api/files/list?path=${q(dir)}`, { headers: { authorization: `Bearer ${t}` } });
    const refusedToken = await list(read);
    expect(refusedToken.status).toBe(403);
    expect(((await refusedToken.json()) as { error: string }).error).toMatch(/"files" scope/);
    expect((await list(files)).status).toBe(200);
  });

  it('names with a quote, a newline, unicode and shell metacharacters work as ordinary names', async () => {
    const names = [
      `it's "quoted".txt`,
      'line\nbreak.txt',
      'ünïcödé ✓ 日本.txt',
      '$(touch PWNED); rm -rf ~ | & `id` > x.txt',
    ];
    const folder = path.join(dir, 'names');
    for (const [i, name] of names.entries()) {
      const up = await put(
        a,
        `/api/files/upload?path=${q(folder)}&name=${q(name)}`,
        Buffer.from(`body ${i}\n`),
      );
      expect(up.status, name).toBe(201);
    }
    const list = await a.get(`/api/files/list?path=${q(folder)}`);
    expect((list.body as { entries: { name: string }[] }).entries.map((e) => e.name).sort()).toEqual(
      [...names].sort(),
    );
    for (const [i, name] of names.entries()) {
      const d = await a.req('GET', `/api/files/download?path=${q(path.join(folder, name))}`);
      expect(d.status, name).toBe(200);
      expect(await d.text()).toBe(`body ${i}\n`);
      const star = /filename\*=UTF-8''([^;]+)/.exec(d.headers.get('content-disposition') ?? '')?.[1];
      expect(decodeURIComponent(star ?? '')).toBe(name);
    }
    const mv = await a.post('/api/files/move', {
      path: path.join(folder, names[3]!),
      name: `${names[1]} & ${names[0]}`,
    });
    expect(mv.status).toBe(200);
    expect(fs.existsSync(path.join(folder, `${names[1]} & ${names[0]}`))).toBe(true);
    expect((await a.post('/api/files/mkdir', { path: folder, name: '; $HOME "dir"' })).status).toBe(201);
    expect(fs.statSync(path.join(folder, '; $HOME "dir"')).isDirectory()).toBe(true);
    expect(fs.existsSync(path.join(aliceHome, 'PWNED'))).toBe(false);
    expect(fs.existsSync('/PWNED')).toBe(false);
  });

  it('the editor: a save with the etag it loaded works; a file changed on disk since gives 409 and stays as it was', async () => {
    const file = path.join(dir, 'script.sh');
    expect(
      (await put(a, `/api/files/upload?path=${q(dir)}&name=script.sh`, Buffer.from('echo one\n'))).status,
    ).toBe(201);
    const t = await a.get(`/api/files/text?path=${q(file)}`);
    expect(t.status).toBe(200);
    const { content, entry } = t.body as { content: string; entry: { etag: string } };
    expect(content).toBe('echo one\n');
    const saved = await put(
      a,
      `/api/files/text?path=${q(file)}&etag=${q(entry.etag)}`,
      Buffer.from('echo two\n'),
    );
    expect(saved.status).toBe(200);
    const newTag = ((await saved.json()) as { entry: { etag: string } }).entry.etag;
    // Someone (alice in a terminal) changes it; a save with the etag from before is refused.
    as('alice', ['sh', '-c', `echo three >> '${file}'`]);
    const stale = await put(
      a,
      `/api/files/text?path=${q(file)}&etag=${q(newTag)}`,
      Buffer.from('echo lost\n'),
    );
    expect(stale.status).toBe(409);
    expect(((await stale.json()) as { error: string }).error).toMatch(/changed on disk since you opened it/);
    refusals++;
    expect(fs.readFileSync(file, 'utf8')).toBe('echo two\nthree\n');
    // Binary and oversized files are not opened in the editor.
    expect((await a.get(`/api/files/text?path=${q(path.join(dir, 'limit.bin'))}`)).status).toBe(413);
    refusals++;
  });

  it('every refused try is in the audit log (a structured line of the gateway log, and the database)', async () => {
    interface Audit {
      audit?: boolean;
      actor: string;
      action: string;
      target: string;
      ok: boolean;
      details: { status: number; why: string };
    }
    const audit = gw
      .log()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Audit)
      .filter((e) => e.audit && e.action.startsWith('files.'));
    const refused = audit.filter((e) => !e.ok);
    expect(refused.length).toBeGreaterThanOrEqual(refusals);
    expect(refused.every((e) => e.details.status >= 400 && e.details.status < 500)).toBe(true);
    expect(refused.some((e) => e.actor === 'bob' && e.target === path.join(dir, 'hello.txt'))).toBe(true);
    expect(refused.some((e) => e.actor === 'alice' && e.target === `${dir}/etc`)).toBe(true);
    expect(refused.some((e) => /symbolic link/.test(e.details.why))).toBe(true);
    // Also those refused before a handler ran: a NUL, a missing CSRF header.
    expect(refused.some((e) => /NUL/.test(e.details.why))).toBe(true);
    expect(refused.some((e) => /CSRF/.test(e.details.why) && e.action === 'files.upload')).toBe(true);
    // Changes that went through are audited too.
    expect(audit.some((e) => e.ok && e.action === 'files.upload' && e.actor === 'alice')).toBe(true);
  });
});
