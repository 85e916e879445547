// Issue 14, point 3, on the local backend: an app never outlives its agent. A real gateway, real Jupyter
// with a real kernel (which Jupyter starts in a session of its own, out of reach of Jupyter's process
// group), and the agent killed with SIGKILL, so it can clean up nothing itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { createKernel, runInKernel } from '../helpers/jupyter.ts';
import { agentPid, isAlive, sessionProcesses } from '../helpers/session-procs.ts';
import { until } from '../helpers/wait.ts';

let gw: TestGateway;
let alice: Client;

beforeAll(async () => {
  gw = await createTestGateway({ name: 'local-agent-failure', users: [{ name: 'alice' }] });
  await gw.start();
  alice = new Client(gw.url);
  expect((await alice.login('alice', gw.passwords.alice!)).status).toBe(200);
});

afterAll(async () => {
  for (const s of ((await alice?.get('/api/sessions'))?.body as { sessions?: SessionView[] })?.sessions ??
    []) {
    if (s.state !== 'ended' && s.state !== 'failed') await alice.del(`/api/sessions/${s.id}`);
  }
  await gw?.stop();
});

describe('local backend: the agent killed with SIGKILL', () => {
  it('leaves no process of the session (app, kernel, guard), and the reason names the agent', async () => {
    const r = await alice.post('/api/sessions', {
      cluster: 'local',
      app: 'jupyter',
      cores: 1,
      memoryGb: 1,
      hours: 1,
    });
    expect(r.status).toBe(201);
    const id = (r.body as { session: SessionView }).session.id;
    const s = await waitForState(alice, id, ['running']);
    const kernel = await createKernel(gw.url + s.url, alice.cookie);
    const kernelPid = Number(
      (await runInKernel(gw.url + s.url, alice.cookie, kernel, 'import os; print(os.getpid())')).trim(),
    );
    expect(kernelPid).toBeGreaterThan(1);
    // The agent, its guard, Jupyter and the kernel (at least).
    const before = sessionProcesses('alice', id);
    expect(before.map((p) => p.pid)).toContain(kernelPid);
    expect(before.some((p) => p.args.includes('--atrium-guard'))).toBe(true);
    const agent = agentPid('alice', id);
    expect(agent).toBeDefined();

    process.kill(agent!, 'SIGKILL');

    // Within one poll (2 s on the local backend; waited for generously): nothing of the session is left.
    await until(
      'no process of the session',
      () => sessionProcesses('alice', id).length === 0 && !isAlive(kernelPid),
      30_000,
    );
    const ended = await waitForState(alice, id, ['ended', 'failed'], 30_000);
    expect(ended.reason).toMatch(/^the agent died/);
    expect(ended.reason).toContain('SIGKILL');
    expect(ended.queue).toBeNull();
  });
});
