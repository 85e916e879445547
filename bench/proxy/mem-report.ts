// What a benchmarked process says about its memory when asked over IPC: full GCs first (needs
// --expose-gc), a short settle, then process.memoryUsage() and the number of live libuv handles.
import fs from 'node:fs';
import { Session } from 'node:inspector';
import type { ProbeReport } from './lib.ts';

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Extra = () => Partial<ProbeReport> | Promise<Partial<ProbeReport>>;

export async function collectReport(extra: Extra = () => ({})): Promise<ProbeReport> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await settle(150);
  }
  const m = process.memoryUsage();
  const active = (process as unknown as { _getActiveHandles(): object[] })._getActiveHandles();
  const handles = active.length;
  const handleTypes: Record<string, number> = {};
  const openSockets: string[] = [];
  for (const h of active) {
    const type = h.constructor?.name ?? 'unknown';
    handleTypes[type] = (handleTypes[type] ?? 0) + 1;
    if (type === 'Socket' && openSockets.length < 20) {
      const s = h as import('node:net').Socket;
      openSockets.push(
        `${s.localPort ?? '?'}<->${s.remotePort ?? '?'} ${s.readyState} destroyed=${s.destroyed} readable=${s.readable} writable=${s.writable} flowing=${s.readableFlowing} buffered=${s.readableLength} wEnded=${s.writableEnded} wFinished=${s.writableFinished} wLen=${s.writableLength} finishL=${s.listenerCount('finish')} endL=${s.listenerCount('end')} closeL=${s.listenerCount('close')} dataL=${s.listenerCount('data')}`,
      );
    }
  }
  return {
    rss: m.rss,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    handles,
    handleTypes,
    openSockets,
    gc: gc !== undefined,
    ...(await extra()),
  };
}

/** Answers {type:'mem', id} messages from the parent. */
export function answerMemoryRequests(extra?: Extra): void {
  process.on('message', (m: unknown) => {
    const msg = m as { type?: string; id?: string };
    if (msg?.type !== 'mem') return;
    void collectReport(extra).then((report) => process.send?.({ type: 'mem', id: msg.id, report }));
  });
}

/**
 * Steady-state CPU profiles on request: {type:'profile-start'} then {type:'profile-stop', file} writes a
 * .cpuprofile of just that window (start-up excluded), for chrome://inspect or speedscope.
 */
export function answerProfileRequests(): void {
  let session: Session | undefined;
  process.on('message', (m: unknown) => {
    const msg = m as { type?: string; id?: string; file?: string };
    if (msg?.type === 'profile-start' && !session) {
      session = new Session();
      session.connect();
      session.post('Profiler.enable', () =>
        session!.post('Profiler.setSamplingInterval', { interval: 200 }, () =>
          session!.post('Profiler.start', () => process.send?.({ type: 'profile-start', id: msg.id })),
        ),
      );
    } else if (msg?.type === 'profile-stop' && session && msg.file) {
      const s = session;
      session = undefined;
      s.post('Profiler.stop', (err, res) => {
        if (!err) fs.writeFileSync(msg.file!, JSON.stringify(res.profile));
        s.disconnect();
        process.send?.({ type: 'profile-stop', id: msg.id, ok: !err });
      });
    }
  });
}
