import type { AppDefinition } from './types.ts';

/** The catalogue shipped with Atrium; a site's `apps:` config entries replace or add to these by id. */
export const BUILTIN_APPS: AppDefinition[] = [
  {
    id: 'jupyter',
    name: 'Jupyter',
    description: 'Jupyter Notebook: notebooks, a file browser and terminals in your browser.',
    icon: 'jupyter',
    command: [
      '/usr/bin/jupyter-notebook',
      '--no-browser',
      '--ip={bind_host}',
      '--port={port}',
      '--NotebookApp.base_url={base_url}',
      '--NotebookApp.allow_remote_access=True',
      '--notebook-dir={home}',
    ],
    env: { JUPYTER_TOKEN: '{token}', PYDEVD_DISABLE_FILE_VALIDATION: '1' },
    prefix: 'keep',
    ready: { http: '{base_url}api', timeoutSeconds: 120 },
    upstreamHeaders: { Authorization: 'token {token}' },
    requires: ['/usr/bin/jupyter-notebook'],
    openPath: 'tree',
  },
];
