// Preloaded into configurable-http-proxy (node --expose-gc --import this-file bin/configurable-http-proxy)
// so the benchmark can read its memory the same way as the gateway's: on an IPC {type:'mem'} message,
// full GCs, a short settle, then process.memoryUsage() and the live handles. It adds nothing else
// to CHP (no listener on its servers, no timer, no patching) and ends it if the benchmark dies.
const settle = (ms) => new Promise((r) => setTimeout(r, ms));

if (process.send) {
  process.on('message', async (msg) => {
    if (msg?.type !== 'mem') return;
    for (let i = 0; i < 3; i++) {
      globalThis.gc?.();
      await settle(150);
    }
    const m = process.memoryUsage();
    const active = process._getActiveHandles();
    const handleTypes = {};
    for (const h of active)
      handleTypes[h.constructor?.name ?? 'unknown'] =
        (handleTypes[h.constructor?.name ?? 'unknown'] ?? 0) + 1;
    process.send({
      type: 'mem',
      id: msg.id,
      report: {
        rss: m.rss,
        heapUsed: m.heapUsed,
        heapTotal: m.heapTotal,
        external: m.external,
        handles: active.length,
        handleTypes,
        gc: typeof globalThis.gc === 'function',
      },
    });
  });
  // The IPC channel must not keep CHP alive on its own; if the benchmark dies, CHP goes too.
  process.channel?.unref();
  process.on('disconnect', () => process.exit(0));
}
