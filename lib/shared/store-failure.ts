/**
 * Why the table could not be read at all, from the error the AWS SDK threw: the edges that talk
 * to the table from an operator's machine (the CLI, the console) say it in words instead of
 * "failed" or "internal error".
 */

/**
 * The table's name is unknown to DynamoDB, nothing answers at its endpoint, something answers
 * there but not as DynamoDB (the local stack's API or console port given for DynamoDB Local's),
 * no AWS credentials were found, or the credentials found may not do what was asked (their IAM
 * policy lacks it).
 */
export type StoreFailure = 'missing_table' | 'unreachable' | 'not_dynamodb' | 'no_credentials' | 'access_denied';

/** Which StoreFailure `error` is, or undefined when it is anything else. */
export function storeFailure(error: unknown): StoreFailure | undefined {
  const e = (error ?? {}) as {
    name?: string;
    code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
  };
  if (e.name === 'ResourceNotFoundException') return 'missing_table';
  if (e.name === 'AccessDeniedException') return 'access_denied';
  // An HTTP answer with no DynamoDB error type in it (the SDK names it "Unknown"), or a body that
  // is not JSON at all (an HTML page): the endpoint is some other server.
  if (e.$metadata?.httpStatusCode !== undefined && (e.name === 'Unknown' || e.name === 'SyntaxError'))
    return 'not_dynamodb';
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

/**
 * IAM's refusal: "User: <principal ARN> is not authorized to perform: <action> on resource:
 * <table ARN>[/index/<index>] because ...". Only the action and the names of the table and index
 * are taken (each to its own strict pattern); the principal and the account are never repeated.
 */
const REFUSAL =
  /perform: (dynamodb:[A-Za-z]{1,40}) on resource: arn:[a-z-]{1,20}:dynamodb:[^:\s]*:[^:\s]*:table\/([A-Za-z0-9_.-]{3,255})(?:\/index\/([A-Za-z0-9_.-]{3,255}))?/;

/**
 * The permission an AccessDeniedException says was refused, in words without any principal,
 * account or key material: `dynamodb:Query on table "keypool" (index pool-keys)`. Where the
 * message does not say, the table is `tableName` (the one the edge was configured with).
 */
export function deniedPermission(error: unknown, tableName: string): string {
  const message = (error as { message?: unknown } | undefined)?.message;
  const match = REFUSAL.exec(typeof message === 'string' ? message : '');
  const [, action = 'a DynamoDB action', table = tableName, index] = match ?? [];
  return `${action} on table "${table}"${index === undefined ? '' : ` (index ${index})`}`;
}
