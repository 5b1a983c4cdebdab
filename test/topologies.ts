/** Hand-built validated topologies for pure tests (the config stage has its own tests). */
import { type CollectionSpec, DEFAULT_FDW_USER, DEFAULT_QUERY_SETTINGS, type SecondarySpec, type PlacedCollection, type ShardedCollection, type Topology } from '../src/config/types.js';

export const SECRET_A = 'canary-Pw-a1!@';
export const SECRET_B = 'canary-Pw-b2#';

const base = { dimension: 3, metric: 'cosine', index: { method: 'hnsw', m: 16, efConstruction: 64 }, query: DEFAULT_QUERY_SETTINGS, columns: [], protect: false } as const;

/** A secondary with the default wrapper role and a generated wrapper password. */
export const secondary = (name: string, url: string, over: Partial<Omit<SecondarySpec, 'name' | 'url'>> = {}): SecondarySpec => ({
  name,
  url,
  replicas: [],
  fdwUser: DEFAULT_FDW_USER,
  fdwPassword: undefined,
  ...over,
});

export function collection(name: string, secondary: string, over: Partial<Omit<PlacedCollection, 'secondary' | 'shards'>> = {}): CollectionSpec {
  return { ...base, name, secondary, ...over };
}

export function sharded(name: string, shards: readonly string[], partitions: number, over: Partial<Omit<ShardedCollection, 'secondary' | 'shards' | 'partitions'>> = {}): CollectionSpec {
  return { ...base, name, shards, partitions, ...over };
}

export function topology(over: Partial<Topology> = {}): Topology {
  return {
    version: 1,
    file: '<test>',
    primary: { url: 'postgres://postgres:primary-pw@127.0.0.1:5432/app' },
    secondaries: [
      secondary('pod_text', `postgres://postgres:${encodeURIComponent(SECRET_A)}@10.0.0.2:5433/vectors`),
      secondary('pod_img', `postgres://admin:${encodeURIComponent(SECRET_B)}@10.0.0.3:5432/postgres?sslmode=require`),
    ],
    collections: [
      collection('docs', 'pod_text', { dimension: 384, columns: [{ name: 'url', type: 'text' }, { name: 'year', type: 'integer' }] }),
      collection('images', 'pod_img', { dimension: 512, metric: 'l2', index: { method: 'ivfflat', lists: 100 } }),
    ],
    extensionSchema: undefined,
    apiRoles: [],
    writeRoles: [],
    secrets: [SECRET_A, SECRET_B, 'primary-pw'],
    ...over,
  };
}
