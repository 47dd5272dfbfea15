import { NoUsableKey } from '../../lib/domain/errors.js';

/** The `no_usable_key` refusal a lease gets; throws if the lease is granted or fails otherwise. */
export async function refusal(lease: Promise<unknown>): Promise<NoUsableKey> {
  const error = await lease.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof NoUsableKey)) throw new Error(`expected NoUsableKey, got ${String(error)}`);
  return error;
}
