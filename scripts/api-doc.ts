// Writes docs/api.md from the gateway's OpenAPI document (`npm run docs:api`), or with --check exits 1
// when the committed file differs (the test command runs the same check as a unit test).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiReference, referenceApiDocument } from '../src/server/api-doc.ts';

const file = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'api.md');
const text = apiReference(await referenceApiDocument());
if (process.argv.includes('--check')) {
  const committed = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  if (committed !== text) {
    console.error('docs/api.md is stale: run `npm run docs:api`');
    process.exit(1);
  }
} else {
  fs.writeFileSync(file, text);
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}
// The throwaway gateway is closed; timers of libraries it loaded need not keep the process.
process.exit(0);
