/** The migrate Lambda's event, validated at the edge: the source, and the CLI's options. */
import * as z from 'zod/mini';
import { PoolName, TableName } from '../domain/primitives.js';

export const MigrateEvent = z.strictObject({
  source: z.union([
    z.strictObject({
      s3: z.strictObject({
        bucket: z.string().check(z.minLength(3), z.maxLength(63)),
        key: z.string().check(z.minLength(1), z.maxLength(1024)),
      }),
    }),
    z.strictObject({ table: TableName }),
  ]),
  pool: z.optional(PoolName),
  dryRun: z.optional(z.boolean()),
  initialCredits: z.optional(z.number().check(z.positive(), z.maximum(1_000_000))),
});

export type MigrateEvent = z.infer<typeof MigrateEvent>;
