import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { renderSchema, SCHEMA_PATH } from '../../scripts/gen-schema.js';

test('templates/topology.schema.json is what the validator definitions generate (run `npm run schema`)', () => {
  assert.equal(readFileSync(SCHEMA_PATH, 'utf8'), renderSchema());
});
