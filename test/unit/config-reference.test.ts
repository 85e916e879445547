// The configuration reference is generated from the schema: every key documented, the committed doc current.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { referenceRows, undocumentedKeys } from '../../src/config/reference.ts';
import { configReference } from '../../src/config/reference-doc.ts';
import { ConfigSchema } from '../../src/config/schema.ts';

describe('configuration reference', () => {
  it('every key of the schema has a description', () => {
    expect(undocumentedKeys(ConfigSchema as never)).toEqual([]);
  });

  it('docs/configuration.md is the generated reference (run `npm run docs:config` when this fails)', () => {
    const committed = fs.readFileSync(path.join(import.meta.dirname, '../../docs/configuration.md'), 'utf8');
    expect(committed).toBe(configReference());
  });

  it('lists nested and list keys with their defaults and ranges', () => {
    const rows = referenceRows(ConfigSchema as never);
    const port = rows.find((r) => r.key === 'server.port');
    expect(port).toMatchObject({ default: '`8000`', range: '≥ 0, ≤ 65535' });
    expect(rows.some((r) => r.key === 'clusters[].slurm.pollSeconds')).toBe(true);
  });
});
