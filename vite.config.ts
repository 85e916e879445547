// The web UI: a React single-page app in src/web, built to dist/web (served by the gateway).
// `npx vite` starts a dev server that forwards the API and the session proxy to a gateway on :8000.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));
const gateway = process.env.ATRIUM_DEV_GATEWAY ?? 'http://127.0.0.1:8000';

export default defineConfig({
  root: path.join(here, 'src', 'web'),
  base: '/',
  publicDir: path.join(here, 'src', 'web', 'public'),
  plugins: [react()],
  build: {
    outDir: path.join(here, 'dist', 'web'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // The strict CSP (script-src 'self') forbids inline scripts: never inline anything into index.html.
    assetsInlineLimit: 0,
  },
  server: {
    host: '127.0.0.1',
    port: 5173,
    strictPort: true,
    proxy: {
      '/api': { target: gateway, changeOrigin: false },
      '/user': { target: gateway, changeOrigin: false, ws: true },
    },
  },
});
