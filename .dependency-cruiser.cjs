// Layer rules of src/ (docs/architecture.md), checked by the test command (`npm run layers`).
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'Import cycles make modules impossible to read or test alone.', from: { path: '^src' }, to: { circular: true } },
    {
      name: 'core-without-io',
      severity: 'error',
      comment: 'src/core is domain logic: no I/O modules, and nothing above it.',
      from: { path: '^src/core/' },
      to: { pathNot: ['^src/core/', '^src/api/', '^node_modules/typebox'] },
    },
    {
      name: 'web-imports-only-the-api-contract',
      severity: 'error',
      comment: 'The web UI talks to the gateway through the API contract only.',
      from: { path: '^src/web/' },
      to: { path: '^src/', pathNot: ['^src/web/', '^src/api/'] },
    },
    {
      name: 'web-bundles-no-schemas',
      severity: 'error',
      comment:
        'The web takes the API contract\'s types (erased from the bundle) and values only from src/api/forms.ts, so no schema code reaches the browser.',
      from: { path: '^src/web/' },
      to: { path: '^src/api/', pathNot: '^src/api/forms\\.ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'api-contract-is-low',
      severity: 'error',
      comment: 'The API contract is read by every layer: it imports only itself and the pure domain (src/core).',
      from: { path: '^src/api/' },
      to: { path: '^src/', pathNot: ['^src/api/', '^src/core/'] },
    },
    {
      name: 'services-never-import-server',
      severity: 'error',
      comment: 'The HTTP layer sits on top: services are used by it, never the reverse.',
      from: { path: '^src/', pathNot: ['^src/server/', '^src/cli/'] },
      to: { path: '^src/server/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
