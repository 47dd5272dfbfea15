/**
 * Why the table could not be read at all, from the error the AWS SDK threw: the edges that talk
 * to the table from an operator's machine (the CLI, the console) say it in words instead of
 * "failed" or "internal error".
 */

/** The table's name is unknown to DynamoDB, nothing answers at its endpoint, or no AWS credentials were found. */
export type StoreFailure = 'missing_table' | 'unreachable' | 'no_credentials';

/** Which StoreFailure `error` is, or undefined when it is anything else. */
export function storeFailure(error: unknown): StoreFailure | undefined {
  const e = (error ?? {}) as { name?: string; code?: string; message?: string };
  if (e.name === 'ResourceNotFoundException') return 'missing_table';
  if (
    e.code === 'ECONNREFUSED' ||
    e.name === 'TimeoutError' ||
    /ECONNREFUSED|connect|socket hang up/i.test(e.message ?? '')
  ) {
    return 'unreachable';
  }
  if (e.name === 'CredentialsProviderError') return 'no_credentials';
  return undefined;
}
