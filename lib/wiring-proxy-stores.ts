/**
 * The stores proxy mode keeps beside the lease path, built from configuration: the idempotency
 * records and job pins in the table, and the kept answers in S3 (AWS) or the data dir (the local
 * stack). Its own module, so only what proxies bundles the S3 calls and the file store.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { documentClient } from './adapters/dynamo-client.js';
import { DynamoJobPins } from './adapters/dynamo-job-pins.js';
import { DynamoProxyIdempotency } from './adapters/dynamo-proxy-idempotency.js';
import { ANSWERS_DIR, FileAnswerStore } from './adapters/file-answer-store.js';
import { dataDirKeyFile, readLocalSealingKey } from './adapters/local-sealing-key.js';
import { S3AnswerStore } from './adapters/s3-answer-store.js';
import { configuredEndpoint } from './adapters/aws-http.js';
import { S3Rest } from './adapters/s3-rest.js';
import { ConfigError, localDataDir, readSealingConfig } from './config.js';
import type { StoreConfig } from './wiring.js';
import { tableStore } from './wiring.js';

export interface TableProxyStores {
  idempotency: DynamoProxyIdempotency;
  jobs: DynamoJobPins;
}

/** The proxied requests' idempotency records and the async jobs' pins over the configured table. */
export function tableProxyStores(config: StoreConfig, client = documentClient(config)): TableProxyStores {
  return {
    idempotency: tableStore(DynamoProxyIdempotency, config, client),
    jobs: tableStore(DynamoJobPins, config, client),
  };
}

/**
 * Kept answers in the bucket the stack made for them (SSE-KMS by its default, a one-day
 * lifecycle), in the function's region (AWS_REGION, which Lambda sets) or at the endpoint the
 * environment names for S3 (AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, as the AWS SDK reads them).
 */
export function bucketAnswerStore(bucket: string, env: NodeJS.ProcessEnv = process.env): S3AnswerStore {
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (!region) throw new ConfigError('AWS_REGION is not set: the answers bucket is reached in the region it names');
  const endpoint = configuredEndpoint('S3', env);
  return new S3AnswerStore({ client: new S3Rest({ region, ...(endpoint ? { endpoint } : {}) }), bucket });
}

/**
 * Kept answers in the local data dir (`<data dir>/answers`), under a key derived from the local
 * sealing key: the key file the environment names, else the data dir's (which the local stack
 * creates at start, prepareLocalSealing; this never creates one: a key made here could be
 * taken for the one that sealed the table's keys). With a KMS key configured there is no local key to derive from: the
 * answers are kept under a key of this process only (a replay after a restart calls the
 * provider again, as after a lost answer).
 */
export async function localAnswerStore(env: NodeJS.ProcessEnv = process.env): Promise<FileAnswerStore> {
  const dataDir = localDataDir(env);
  const sealing = readSealingConfig(env);
  const sealingKey =
    sealing?.kind === 'kms'
      ? randomBytes(32)
      : await readLocalSealingKey(sealing?.kind === 'local' ? sealing.keyFile : dataDirKeyFile(dataDir));
  return new FileAnswerStore({ dir: join(dataDir, ANSWERS_DIR), sealingKey });
}
