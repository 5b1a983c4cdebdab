/** Writes templates/topology.schema.json from the validator's own definitions (`npm run schema`). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { topologyJsonSchema } from '../src/config/index.js';

export const SCHEMA_PATH = join(import.meta.dirname, '..', 'templates', 'topology.schema.json');
export const renderSchema = (): string => `${JSON.stringify(topologyJsonSchema(), null, 2)}\n`;

if (process.argv[1] === import.meta.filename) writeFileSync(SCHEMA_PATH, renderSchema());
