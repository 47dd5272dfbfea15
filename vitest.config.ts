import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The client package as its source (tsconfig.json's `paths` says the same to tsc): the service
  // and its tests run what is in the tree; test/clients/ installs the packed build.
  resolve: { alias: { '@keypool/client': fileURLToPath(new URL('clients/typescript/src/index.ts', import.meta.url)) } },
  test: {
    pool: 'forks',
    // Transformed modules are kept on disk between runs (node_modules/.experimental-vitest-cache,
    // keyed by content): a warm `npm run test:unit` spends ~0.2 s rather than ~1 s turning
    // TypeScript into JavaScript. Experimental in Vitest 4.1; `npx vitest --clearCache` empties it.
    experimental: { fsModuleCache: true },
    // No test asks the instance metadata service for credentials: tests reach loopback only.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', AWS_EC2_METADATA_DISABLED: 'true' },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      {
        // Pure logic and the in-memory store: no Java, no database (`npm run test:unit`); the
        // client package's own tests, against recording servers on loopback.
        extends: true,
        // Threads, not processes, and modules shared between files (isolate: false): these
        // files keep no global state, and loading zod, the SDK and the ESDK once instead of per
        // file is most of what makes `npm run test:unit` take ~2 s rather than ~4 s.
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'clients/typescript/test/**/*.test.ts'],
          pool: 'threads',
          isolate: false,
        },
      },
      {
        // Pure tests too slow for the unit project: exhaustive sweeps, model simulations, the
        // CDK app synthesized and its functions bundled. No Java either; `npm test` runs them.
        extends: true,
        test: { name: 'slow', include: ['test/slow/**/*.test.ts', 'test/infra/**/*.test.ts'] },
      },
      {
        // Everything whose behaviour depends on DynamoDB: one DynamoDB Local for the whole run;
        // test files isolate themselves by table name.
        extends: true,
        test: {
          name: 'dynamodb',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**', 'test/slow/**', 'test/infra/**'],
          globalSetup: ['test/support/global-setup.ts'],
        },
      },
    ],
  },
});
