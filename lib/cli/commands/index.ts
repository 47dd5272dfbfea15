/** Every CLI command, in the order `keypool --help` lists them. Add a command here. */
import type { Command } from '../framework.js';
import { add, disable, enable, list } from './keys.js';
import { complete, increment, lease } from './lease.js';
import { migrateCommand } from './migrate.js';
import { maintain } from './maintain.js';
import { status } from './status.js';

export const COMMANDS: Command[] = [add, list, lease, complete, increment, disable, enable, migrateCommand, maintain, status];
