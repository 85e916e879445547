// Writes docs/configuration.md from the configuration schema (`npm run docs:config`), or with
// --check exits 1 when the committed file differs (the test command runs the check as a unit test).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configReference } from '../src/config/reference-doc.ts';

const file = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'configuration.md');
const text = configReference();
if (process.argv.includes('--check')) {
  const committed = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  if (committed !== text) {
    console.error('docs/configuration.md is stale: run `npm run docs:config`');
    process.exit(1);
  }
} else {
  fs.writeFileSync(file, text);
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}
