/**
 * `npm start`: DynamoDB Local (kept in KEYPOOL_DATA_DIR) plus the HTTP API on loopback,
 * through the same Lambda handlers, and the read-only console beside it. With
 * KEYPOOL_DYNAMODB_ENDPOINT set, no database is started.
 */
import { startConsole } from '../lib/console/server.js';
import {
  cliEnvironment,
  localDataDir,
  readConfig,
  readConsolePort,
  readDynamoLocalPort,
  readPositiveInt,
} from '../lib/config.js';
import {
  assertPortFree,
  ensureTable,
  LocalStackError,
  type RunningDynamo,
  startDynamoLocal,
  waitForDynamo,
} from '../lib/local/dynamodb-local.js';
import { assertDataDirFree } from '../lib/local/data-dir-lock.js';
import { startServer } from '../lib/local/server.js';
import { DEFAULT_TABLE_NAME } from '../lib/table.js';
import { redact } from '../lib/shared/redact.js';
import { overview } from '../lib/wiring.js';
import { prepareLocalSealing } from '../lib/wiring-secrets.js';
import { loadHandlers, loadProxy } from './local-handlers.js';

// The SDK warns that its 2027 releases need Node 22; the Lambdas run Node 24, so on a laptop
// with Node 20 the warning is noise in every command's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// What this start runs, as it comes up: whatever ends the start closes them. A DynamoDB Local
// still starting is not here yet; its own exit hook (startDynamoLocal) stops it then.
let dynamo: RunningDynamo | undefined;
const servers: { close(): Promise<void> }[] = [];
let stopping = false;

/** Closes what runs and exits with `code`; the first call wins. */
function shutDown(code: number, withDynamo: boolean): void {
  if (stopping) return;
  stopping = true;
  void Promise.all([...servers.map((server) => server.close()), withDynamo ? dynamo?.stop() : undefined]).then(() =>
    process.exit(code),
  );
}

/** Ctrl-C or SIGTERM, from the first moment: a signal while DynamoDB Local starts must not leave it running. */
function stopAsked(): void {
  if (stopping) return;
  process.stdout.write('stopping keypool...\n');
  shutDown(0, true);
}

/** Fails with one actionable line when two of the stack's listeners are given the same port. */
function assertDistinctPorts(ports: [variable: string, port: number][]): void {
  ports.forEach(([variable, port], i) => {
    const other = ports.slice(0, i).find(([, earlier]) => earlier === port);
    if (other) throw new LocalStackError(`${other[0]} and ${variable} are both ${port}: give each its own port`);
  });
}

async function main(): Promise<void> {
  process.on('SIGINT', stopAsked);
  process.on('SIGTERM', stopAsked);
  const env = process.env;
  const apiPort = readPositiveInt(env, 'KEYPOOL_PORT', 3000);
  const consolePort = readConsolePort(env);
  const dbPort = readDynamoLocalPort(env);
  const tableName = env.KEYPOOL_TABLE || DEFAULT_TABLE_NAME;
  // What a CLI in another terminal must set, from the settings as given (the start adds its own).
  const cli = cliEnvironment({ ...env });
  assertDistinctPorts([
    ['KEYPOOL_PORT', apiPort],
    ['KEYPOOL_CONSOLE_PORT', consolePort],
    ...(env.KEYPOOL_DYNAMODB_ENDPOINT ? [] : [['KEYPOOL_DYNAMODB_LOCAL_PORT', dbPort] as [string, number]]),
  ]);
  // Another start on this data dir is named first: on the same ports it would otherwise read as a stranger's port.
  if (!env.KEYPOOL_DYNAMODB_ENDPOINT) assertDataDirFree(localDataDir(env));
  await assertPortFree(apiPort, 'keypool API', 'KEYPOOL_PORT');
  await assertPortFree(consolePort, 'keypool console', 'KEYPOOL_CONSOLE_PORT');

  let endpoint = env.KEYPOOL_DYNAMODB_ENDPOINT;
  if (endpoint) {
    await waitForDynamo(endpoint, 5_000);
  } else {
    dynamo = await startDynamoLocal({
      port: dbPort,
      dataDir: localDataDir(env),
      alongside: { API: apiPort, console: consolePort },
    });
    endpoint = dynamo.endpoint;
    // The handlers read the endpoint from the environment, like a Lambda reads its configuration.
    process.env.KEYPOOL_DYNAMODB_ENDPOINT = endpoint;
  }
  const table = await ensureTable(endpoint, tableName);
  const sealing = await prepareLocalSealing(readConfig(env), env);
  const server = await startServer(await loadHandlers(), apiPort, loadProxy());
  servers.push(server);
  const consoleServer = await startConsole({
    source: overview(readConfig(env)),
    tableName,
    port: consolePort,
    onError: (error) =>
      process.stderr.write(
        `keypool console: a read failed: ${redact(error instanceof Error ? error.message : String(error))}\n`,
      ),
  });
  servers.push(consoleServer);

  process.stdout.write(
    [
      `keypool is up`,
      `  API        ${server.url}   (try: curl ${server.url}/health)`,
      `  OpenAPI    ${server.url}/openapi.json`,
      `  Console    ${consoleServer.url}   (read-only: pools, keys, maintenance runs)`,
      `  DynamoDB   ${endpoint}   table "${tableName}" (${table})${dynamo ? `, data in ${localDataDir(env)}/` : ''}`,
      `  Sealing    ${sealing}`,
      cli.length
        ? `  CLI        export ${cli.join(' ')}   (in another terminal, before npm run keypool)`
        : `  CLI        npm run keypool -- <command>   (its defaults reach this stack)`,
      `Ctrl-C stops them all.`,
      '',
    ].join('\n'),
  );

  dynamo?.process.once('exit', () => {
    if (stopping) return;
    process.stderr.write('keypool: DynamoDB Local stopped unexpectedly; shutting down\n');
    shutDown(1, false);
  });
}

main().catch((error: unknown) => {
  const message =
    error instanceof LocalStackError || (error instanceof Error && error.name === 'ConfigError')
      ? error.message
      : `could not start: ${String(error)}`;
  process.stderr.write(`keypool: ${message}\n`);
  // A refusal after DynamoDB Local is up (a sealing key missing, a table it cannot open) must not
  // leave the java process holding the port and the data dir for the next start.
  shutDown(1, true);
});
