/**
 * Every use case's key port at once: what the DynamoDB key store
 * (lib/adapters/dynamo-key-store.ts) and the tests' in-memory store offer, and what the Broker
 * (every use case behind one object) takes. A use case asks for its own port, never this one.
 */
import type { ImportStore } from './import-store.js';
import type { KeyAdminStore } from './key-admin-store.js';
import type { LeaseStore } from './lease-store.js';
import type { ResealStore } from './reseal-store.js';
import type { ReshardStore } from './reshard-store.js';

export interface KeyStore extends LeaseStore, KeyAdminStore, ImportStore, ResealStore, ReshardStore {}
