// docs/configuration.md: the fixed introduction and the generated reference of every key.
import { referenceMarkdown } from './reference.ts';
import { ConfigSchema } from './schema.ts';

const INTRO = `# Configuration

<!-- Generated from src/config/schema.ts by \`npm run docs:config\`; edit the schema, not this file. -->

One YAML file, given with \`--config <file>\` (or \`ATRIUM_CONFIG\`). Every key has a default: an
empty file (or none) is the embedded setup — SQLite under \`./data\`, the \`local\` backend, local
accounts, on http://127.0.0.1:8000. The file is validated at start; each problem is reported with
its key and line, and \`atrium config check <file>\` does the same without starting anything:

\`\`\`
$ atrium config check broken.yaml
invalid configuration in /etc/atrium/broken.yaml:
  server.port (line 2): must be <= 65535
  clusters[0].maxHourz (line 6): unknown key
\`\`\`

Keys are written with dots for nesting and \`[]\` for the entries of a list (\`clusters[].slurm.partition\`
is the \`partition\` of the \`slurm\` settings of each entry of \`clusters\`). Prose on the larger topics:
sign-in providers in [configuration-auth.md](configuration-auth.md), Slurm in [slurm.md](slurm.md),
batch jobs in [jobs.md](jobs.md), the ssh backend in [ssh.md](ssh.md), apps and environments in
[apps.md](apps.md), metrics and administration in [admin.md](admin.md), deployment in [deploy.md](deploy.md).
`;

export function configReference(): string {
  return referenceMarkdown(ConfigSchema as never, INTRO);
}
