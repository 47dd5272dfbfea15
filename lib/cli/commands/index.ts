/** Every CLI command, in the order `keypool --help` lists them. Add a command (or a group of subcommands) here. */
import type { Command, CommandGroup } from '../framework.js';
import { accountCommand } from './accounts.js';
import { add, disable, enable, list, reset, retire } from './keys.js';
import { consoleCommand } from './console.js';
import { complete, increment, lease } from './lease.js';
import { migrateCommand } from './migrate.js';
import { maintain } from './maintain.js';
import { poolCommand } from './pools.js';
import { reseal } from './reseal.js';
import { status } from './status.js';

export const COMMANDS: (Command | CommandGroup)[] = [
  poolCommand,
  accountCommand,
  add,
  list,
  lease,
  complete,
  increment,
  reset,
  disable,
  enable,
  retire,
  migrateCommand,
  reseal,
  maintain,
  status,
  consoleCommand,
];
