import { describe, expect, it } from 'vitest';
import { EventBus, type LiveEvent } from '../../src/events/bus.ts';

describe('EventBus audiences', () => {
  const setup = () => {
    const bus = new EventBus();
    const got: Record<string, string[]> = { alice: [], carol: [], admin: [] };
    const sub = (name: string, userId: number, isAdmin: boolean, clusters: string[]) =>
      bus.subscribe({
        userId,
        isAdmin,
        clusters: new Set(clusters),
        send: (ev: LiveEvent) => got[name]!.push(`${ev.type}:${String(ev.data)}`),
      });
    sub('alice', 1, false, ['hpc1', 'hpc2']);
    sub('carol', 2, false, ['hpc1']);
    sub('admin', 3, true, []);
    return { bus, got };
  };

  it('delivers a cluster event to its users and to admins only', () => {
    const { bus, got } = setup();
    bus.publish({ cluster: 'hpc2' }, { type: 'resources', data: 'hpc2' });
    bus.publish({ cluster: 'hpc1' }, { type: 'resources', data: 'hpc1' });
    expect(got.alice).toEqual(['resources:hpc2', 'resources:hpc1']);
    expect(got.carol).toEqual(['resources:hpc1']);
    expect(got.admin).toEqual(['resources:hpc2', 'resources:hpc1']);
  });

  it('keeps user and admin events to their audience', () => {
    const { bus, got } = setup();
    bus.publish({ userId: 2 }, { type: 'job', data: 'carol' });
    bus.publish({ admins: true }, { type: 'cluster', data: 'drain' });
    bus.publish({ all: true }, { type: 'announcement', data: 'hi' });
    expect(got.alice).toEqual(['announcement:hi']);
    expect(got.carol).toEqual(['job:carol', 'announcement:hi']);
    expect(got.admin).toEqual(['cluster:drain', 'announcement:hi']);
  });
});
