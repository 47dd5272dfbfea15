/** The --pool flag of every pool-scoped command: the API's pool-name rule, default `stability`. */
import { PoolName } from '../../domain/primitives.js';
import { DEFAULT_POOL } from '../../domain/types.js';
import { checked, type ParsedArgs } from '../framework.js';

/** The pool the command works on: --pool checked with the API's rule, else DEFAULT_POOL. */
export function poolFlag(args: ParsedArgs): string {
  return optionalPoolFlag(args) ?? DEFAULT_POOL;
}

/** --pool checked with the API's rule, or undefined for the commands that default to every pool. */
export function optionalPoolFlag(args: ParsedArgs): string | undefined {
  return args.values.pool === undefined ? undefined : checked(PoolName, args.values.pool, '--pool');
}

/** The --pool help line, its text starting at `column` like the command's other lines. */
export function poolHelp(column: number): string {
  return `${'--pool P'.padEnd(column)}the pool (default: ${DEFAULT_POOL})`;
}
