/**
 * What the Lambda bundles load in place of `@aws-sdk/credential-provider-node` (infra/bundling.ts
 * BUNDLE_SUBSTITUTES): the default credential chain cut to its first link, the environment.
 *
 * Lambda hands every function its execution role's credentials in AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, and sets no AWS_PROFILE, so the SDK's own chain
 * answers from that first link on Lambda and never reaches the rest: shared config and SSO
 * profiles, credential processes, web identity, the container and instance metadata services.
 * Those links, and the STS, SSO and sign-in clients they build, are ~130 KB of every bundle
 * and ~13 ms of every cold start's module init (`npm run bench:bundles` prints both).
 *
 * Only the Lambda bundles take this: the CLI, the local stack and the installable clients run
 * from source with the SDK's whole chain, since an operator's machine uses profiles and SSO.
 * A bundle run where the environment holds no credentials fails its first AWS call with the
 * SDK's own "Unable to find environment variable credentials." (test/infra/bundles.test.ts).
 */
import { fromEnv } from '@aws-sdk/credential-provider-env';

type EnvInit = Parameters<typeof fromEnv>[0];

/** The SDK's default provider, as the clients' runtime configuration calls it: from the environment only. */
export const defaultProvider = (init: EnvInit = {}): ReturnType<typeof fromEnv> => fromEnv(init);
