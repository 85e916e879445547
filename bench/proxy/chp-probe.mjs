// Preloaded into configurable-http-proxy (node --expose-gc --import this-file bin/configurable-http-proxy)
// so the benchmark can read its memory the same way as the gateway's: on an IPC {type:'mem'} message,
// full GCs, a short settle, then process.memoryUsage() and the live handle count. It adds nothing
// else to CHP: no listener, no timer, no patching.
const settle = (ms) => new Promise((r) => setTimeout(r, ms));

if (process.send) {
  process.on('message', async (msg) => {
    if (msg?.type !== 'mem') return;
    for (let i = 0; i < 3; i++) {
      globalThis.gc?.();
      await settle(150);
    }
    const m = process.memoryUsage();
    process.send({
      type: 'mem',
      id: msg.id,
      report: {
        rss: m.rss,
        heapUsed: m.heapUsed,
        heapTotal: m.heapTotal,
        external: m.external,
        handles: process._getActiveHandles().length,
        gc: typeof globalThis.gc === 'function',
      },
    });
  });
  // The IPC channel must not keep CHP alive on its own, nor stop it from exiting on SIGTERM.
  process.channel?.unref();
}
