// /metrics counts a session's start and stop (transitions, the sessions gauge from the database, the
// spawn-duration histogram, scheduler polls, the poll's jobs), the event loop's delay and the open
// live-event streams; `atrium config check` names the bad key of a broken
// config and its line, and the gateway refuses to start on it the same way.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { readEvents } from '../helpers/events.ts';
import { ATRIUM, createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { until } from '../helpers/wait.ts';

let gw: TestGateway;
let alice: Client;

/** Value of one sample of the exposition text (0 when absent). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries(
      (m[2] ?? '')
        .split(',')
        .filter(Boolean)
        .map((kv) => {
          const [k, v] = kv.split('=') as [string, string];
          return [k, v.replace(/^"|"$/g, '')];
        }),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) {
      total += Number(m[3]);
      found = true;
    }
  }
  return found ? total : 0;
}

async function scrape(): Promise<string> {
  const r = await fetch(`${gw.url}/metrics`);
  expect(r.status).toBe(200);
  return r.text();
}

beforeAll(async () => {
  gw = await createTestGateway({ name: 'metrics', users: [{ name: 'alice' }] });
  await gw.start();
  alice = new Client(gw.url);
  expect((await alice.login('alice', gw.passwords.alice!)).status).toBe(200);
});

afterAll(async () => {
  await gw?.stop();
});

describe('/metrics', () => {
  it("counts a session's start and stop", async () => {
    const before = await scrape();
    expect(sample(before, 'atrium_signins_total', { method: 'local', result: 'ok' })).toBe(1);
    const labels = { cluster: 'local' };
    const startsBefore = sample(before, 'atrium_session_transitions_total', { ...labels, to: 'running' });
    const endsBefore = sample(before, 'atrium_session_transitions_total', { ...labels, to: 'ended' });

    const r = await alice.post('/api/sessions', {
      cluster: 'local',
      app: 'jupyter',
      cores: 1,
      memoryGb: 1,
      hours: 1,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const s = (r.body as { session: SessionView }).session;
    await waitForState(alice, s.id, ['running'], 90_000);
    const running = await scrape();
    expect(sample(running, 'atrium_session_transitions_total', { ...labels, to: 'running' })).toBe(
      startsBefore + 1,
    );
    expect(sample(running, 'atrium_sessions', { ...labels, state: 'running' })).toBe(1);
    expect(sample(running, 'atrium_spawn_duration_seconds_count', { cluster: 'local', app: 'jupyter' })).toBe(
      1,
    );
    expect(sample(running, 'atrium_scheduler_poll_duration_seconds_count', labels)).toBeGreaterThan(0);
    expect(sample(running, 'atrium_scheduler_calls_total', labels)).toBeGreaterThan(0);
    expect(running).toMatch(/^atrium_proxy_open_websockets 0$/m);
    // The poll's jobs by state and kind (the session's job is one), the gateway's part of each poll,
    // and the event loop's delay, sampled all along.
    expect(sample(running, 'atrium_jobs', { ...labels, state: 'running', kind: 'session' })).toBe(1);
    expect(sample(running, 'atrium_scheduler_poll_apply_duration_seconds_count', labels)).toBeGreaterThan(0);
    expect(sample(running, 'atrium_event_loop_delay_seconds_count')).toBeGreaterThan(0);

    await alice.del(`/api/sessions/${s.id}`);
    await waitForState(alice, s.id, ['ended'], 30_000);
    const stopped = await scrape();
    expect(sample(stopped, 'atrium_session_transitions_total', { ...labels, to: 'ended' })).toBe(
      endsBefore + 1,
    );
    expect(sample(stopped, 'atrium_sessions', { ...labels, state: 'running' })).toBe(0);
  });

  it('counts open live-event streams', async () => {
    expect(sample(await scrape(), 'atrium_sse_clients')).toBe(0);
    const ac = new AbortController();
    let opened: () => void = () => undefined;
    const open = new Promise<void>((r) => {
      opened = r;
    });
    const reading = readEvents(
      `${gw.url}/api/events`,
      { cookie: alice.cookie },
      ac.signal,
      () => undefined,
      opened,
    ).catch(() => undefined);
    await open;
    expect(sample(await scrape(), 'atrium_sse_clients')).toBe(1);
    ac.abort();
    await reading;
    await until(
      'the stream is closed',
      async () => sample(await scrape(), 'atrium_sse_clients') === 0,
      10_000,
    );
  });
});

describe('atrium config check', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-config-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('names the bad key and its line, and the gateway does not start on it', () => {
    const file = path.join(dir, 'broken.yaml');
    fs.writeFileSync(
      file,
      [
        'server:',
        '  port: 8000',
        'clusters:',
        '  - name: login',
        '    backend: ssh',
        '    ssh:',
        '      host: login1.example.org',
        '      pollSecondz: 5',
        'metrics:',
        '  allowFrom: [127.0.0.1]',
        '',
      ].join('\n'),
    );
    const check = spawnSync(ATRIUM, ['config', 'check', file], { encoding: 'utf8' });
    expect(check.status).toBe(2);
    expect(check.stderr).toContain('clusters[0].ssh.pollSecondz (line 8): unknown key');
    const serve = spawnSync(ATRIUM, ['serve', '-c', file], { encoding: 'utf8', timeout: 30_000 });
    expect(serve.status).toBe(2);
    expect(serve.stderr).toContain('clusters[0].ssh.pollSecondz (line 8)');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('pollSecondz', 'pollSeconds'));
    const ok = spawnSync(ATRIUM, ['config', 'check', file], { encoding: 'utf8' });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/OK \(1 cluster/);
  });
});
