// Builds what the gateway serves: the web UI (Vite, into dist/web), the session agent bundle
// (esbuild, into dist/agent) and the gateway's command (esbuild, into dist/cli). Run with tsx, as
// the builders are TypeScript:
//   node --import tsx scripts/build.mjs [--web-only|--agent-only]
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const web = !args.has('--agent-only');
const agent = !args.has('--web-only');

async function timed(label, f) {
  const t0 = performance.now();
  const out = await f();
  console.log(
    `build: ${label} in ${Math.round(performance.now() - t0)} ms${out ? ` -> ${path.relative(root, out)}` : ''}`,
  );
}

if (web) {
  await timed('web UI', async () => {
    const { build } = await import('vite');
    await build({ configFile: path.join(root, 'vite.config.ts'), logLevel: 'warn' });
    return path.join(root, 'dist', 'web');
  });
}
if (agent) {
  await timed('agent', async () => {
    const { buildAgent } = await import('../src/agent/bundle.ts');
    return buildAgent();
  });
  await timed('command', async () => {
    const { buildCli } = await import('../src/cli/bundle.ts');
    return buildCli();
  });
  await timed('file helper', async () => {
    const { buildFilesHelper } = await import('../src/files/bundle.ts');
    return buildFilesHelper();
  });
}
