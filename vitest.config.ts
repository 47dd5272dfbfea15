import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      {
        // Pure logic and the in-memory store: no Java, no database (`npm run test:unit`).
        extends: true,
        // Threads, not processes: these files share nothing, and a worker starts faster than a fork.
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], pool: 'threads' },
      },
      {
        // Everything whose behaviour depends on DynamoDB: one DynamoDB Local for the whole run;
        // test files isolate themselves by table name.
        extends: true,
        test: {
          name: 'dynamodb',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**'],
          globalSetup: ['test/support/global-setup.ts'],
        },
      },
    ],
  },
});
