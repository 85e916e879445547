import type { AppDefinition } from './types.ts';

/** Where scripts/apps.sh installs apps that Debian does not ship (code-server). */
export const APPS_DIR = '/opt/atrium-apps';

/**
 * The catalogue shipped with Atrium. A site's entries (`apps:` inline or in `appsFile:`) replace these
 * by id, add new ones, or remove one with `disabled: true`. docs/apps.md describes every field.
 */
export const BUILTIN_APPS: AppDefinition[] = [
  {
    id: 'jupyter',
    name: 'Jupyter',
    description:
      'JupyterLab where it is installed, else Jupyter Notebook: notebooks, a file browser and terminals.',
    icon: 'jupyter',
    // share/jupyter/atrium-jupyter picks jupyter-lab, then jupyter-notebook (6 or 7), then nbclassic or
    // jupyter-server, on the session's PATH (so an environment may bring its own), with the right flags.
    // It listens on a Unix socket of mode 600 like the other apps (behind the agent's relay on remote
    // nodes): no TCP port that another user of the node could take over if Jupyter died.
    command: [
      '{share}/jupyter/atrium-jupyter',
      '--sock={socket}',
      '--base-url={base_url}',
      '--root-dir={home}',
    ],
    // The token reaches Jupyter through the environment only, and Jupyter never renders it into pages.
    env: {
      ATRIUM_JUPYTER_TOKEN: '{token}',
      PYDEVD_DISABLE_FILE_VALIDATION: '1',
    },
    prefix: 'keep',
    unixSocket: true,
    ready: { http: '{base_url}api', timeoutSeconds: 120 },
    // Still required on the socket: whoever reaches it (root on the node, a relay) gets nothing without it.
    upstreamHeaders: { Authorization: 'token {token}' },
    requires: ['jupyter-lab|jupyter-notebook|jupyter-nbclassic|jupyter-server'],
  },
  {
    id: 'vscode',
    name: 'VS Code',
    description: 'Visual Studio Code in the browser (code-server): editor, terminal and extensions.',
    icon: 'vscode',
    command: [
      `${APPS_DIR}/bin/code-server`,
      '--socket={socket}',
      '--socket-mode=600',
      '--auth=none',
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--user-data-dir={home}/.local/share/code-server',
      '--extensions-dir={home}/.local/share/code-server/extensions',
      '--config={session_dir}/code-server.yaml',
      '{home}',
    ],
    // code-server has no base-path option: it gets "/" and uses relative URLs.
    prefix: 'strip',
    unixSocket: true,
    ready: { http: '/healthz', timeoutSeconds: 90 },
    stop: { graceSeconds: 5 },
    requires: [`${APPS_DIR}/bin/code-server`],
  },
  {
    id: 'desktop',
    name: 'Remote desktop',
    description: 'A Linux desktop (openbox, xterm) in the browser through noVNC.',
    icon: 'desktop',
    // Xvnc on a Unix socket of mode 600 with an X authority file; the gateway serves noVNC and bridges
    // its WebSocket to the socket (transport rfb).
    command: ['{share}/desktop/atrium-desktop', '{socket}', '{session_dir}'],
    env: { ATRIUM_DESKTOP_GEOMETRY: '1280x800' },
    prefix: 'strip',
    transport: 'rfb',
    unixSocket: true,
    ready: { rfb: true, timeoutSeconds: 30 },
    stop: { graceSeconds: 3 },
    requires: ['Xvnc', 'xauth', 'openbox', 'xterm'],
  },
  {
    id: 'terminal',
    name: 'Terminal',
    description: 'A shell on the node in your browser.',
    icon: 'terminal',
    command: ['{node}', '{dist}/apps/terminal/server.mjs', '--socket={socket}'],
    env: { ATRIUM_TERMINAL_TOKEN: '{token}' },
    upstreamHeaders: { 'X-Atrium-Token': '{token}' },
    prefix: 'strip',
    unixSocket: true,
    ready: { http: '/healthz', timeoutSeconds: 30 },
    stop: { signal: 'SIGTERM', graceSeconds: 3 },
  },
  {
    id: 'shiny',
    name: 'R Shiny',
    description: 'A Shiny app in R: ~/shiny-app when you have one, else an example.',
    icon: 'shiny',
    command: ['{share}/shiny/atrium-shiny', '{socket}'],
    prefix: 'strip',
    unixSocket: true,
    ready: { http: '/', timeoutSeconds: 60 },
    requires: ['Rscript'],
  },
  {
    id: 'rstudio',
    name: 'RStudio',
    description: 'RStudio Server (open-source edition), where the site has installed it.',
    icon: 'rstudio',
    command: ['{share}/rstudio/atrium-rstudio', '{bind_host}', '{port}', '{session_dir}'],
    prefix: 'strip',
    ready: { http: '/', timeoutSeconds: 120 },
    requires: ['/usr/lib/rstudio-server/bin/rserver'],
    extra: false,
  },
];
