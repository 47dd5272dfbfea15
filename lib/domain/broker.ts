/**
 * Every use case behind one object, for callers that want them all: the CLI, the in-account
 * client and the tests. The Lambdas use Leasing or KeyAdmin directly, so each bundles only
 * its own half.
 */
import { KeyAdmin, type KeyAdminOptions } from './key-admin.js';
import { Leasing, type LeasingOptions } from './leasing.js';

export type BrokerOptions = LeasingOptions & KeyAdminOptions;

export class Broker {
  readonly leasing: Leasing;
  readonly admin: KeyAdmin;
  readonly lease: Leasing['lease'];
  readonly complete: Leasing['complete'];
  readonly increment: Leasing['increment'];
  readonly importKeys: KeyAdmin['importKeys'];
  readonly setStatus: KeyAdmin['setStatus'];
  readonly list: KeyAdmin['list'];
  readonly listAll: KeyAdmin['listAll'];

  constructor(options: BrokerOptions) {
    this.leasing = new Leasing(options);
    this.admin = new KeyAdmin(options);
    this.lease = this.leasing.lease.bind(this.leasing);
    this.complete = this.leasing.complete.bind(this.leasing);
    this.increment = this.leasing.increment.bind(this.leasing);
    this.importKeys = this.admin.importKeys.bind(this.admin);
    this.setStatus = this.admin.setStatus.bind(this.admin);
    this.list = this.admin.list.bind(this.admin);
    this.listAll = this.admin.listAll.bind(this.admin);
  }
}
