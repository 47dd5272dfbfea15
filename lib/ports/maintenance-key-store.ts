/**
 * What pool maintenance reads and writes of keys: every key with its secret (to ask the provider
 * about it), the undecryptable mark, and a pending reshard's moves. Its balance writes go
 * through BalanceStore (./balance-store.ts).
 */
import type { SecretPages } from './key-pages.js';
import type { ReshardStore } from './reshard-store.js';
import type { UndecryptableMarker } from './undecryptable.js';

export interface MaintenanceKeyStore extends SecretPages, UndecryptableMarker, ReshardStore {}
