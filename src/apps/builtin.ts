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
      '--NotebookApp.token=',
      '--NotebookApp.login_handler_class=atrium_jupyter_auth.NotebookLoginHandler',
      '--notebook-dir={home}',
    ],
    // The token reaches Jupyter through the environment only, and Jupyter never renders it into pages.
    env: {
      ATRIUM_JUPYTER_TOKEN: '{token}',
      PYTHONPATH: '{share}/jupyter',
      PYDEVD_DISABLE_FILE_VALIDATION: '1',
    },
    prefix: 'keep',
    ready: { http: '{base_url}api', timeoutSeconds: 120 },
    upstreamHeaders: { Authorization: 'token {token}' },
    requires: ['/usr/bin/jupyter-notebook'],
    openPath: 'tree',
  },
];
