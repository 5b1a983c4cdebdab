/**
 * Writes templates/topology.schema.json from the validator's own definitions, and templates/plan.schema.json from
 * src/plan/schema.ts (`npm run schema`).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { topologyJsonSchema } from '../src/config/index.js';
import { planJsonSchema } from '../src/plan/schema.js';

export const SCHEMA_PATH = join(import.meta.dirname, '..', 'templates', 'topology.schema.json');
export const renderSchema = (): string => `${JSON.stringify(topologyJsonSchema(), null, 2)}\n`;
export const PLAN_SCHEMA_PATH = join(import.meta.dirname, '..', 'templates', 'plan.schema.json');
export const renderPlanSchema = (): string => `${JSON.stringify(planJsonSchema(), null, 2)}\n`;

if (process.argv[1] === import.meta.filename) {
  writeFileSync(SCHEMA_PATH, renderSchema());
  writeFileSync(PLAN_SCHEMA_PATH, renderPlanSchema());
}
