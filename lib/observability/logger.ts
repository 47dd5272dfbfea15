/**
 * The process's structured logger: one JSON line per entry, in the shape Powertools Logger
 * writes (level, message, timestamp, service, the Lambda context's fields, sampling_rate,
 * xray_trace_id, then the entry's own attributes), at the level POWERTOOLS_LOG_LEVEL sets.
 * keypool logs a handful of messages with flat attributes and never appends keys, buffers or
 * samples debug lines, so the few lines here stand in for Powertools Logger and its commons
 * (~21 KB of every function's bundle and part of each cold start). Every module that logs
 * imports it from here; nothing here touches AWS, so the HTTP layer can log without bundling
 * a client it does not use.
 */
import type { MiddlewareObj } from '@middy/core';
import type { Context } from 'aws-lambda';
import { redact } from '../shared/redact.js';

/** Powertools' level thresholds: an entry is written when its level is at least the logger's. */
const LEVELS = { TRACE: 6, DEBUG: 8, INFO: 12, WARN: 16, ERROR: 20, CRITICAL: 24, SILENT: 28 } as const;
type LevelName = keyof typeof LEVELS;

/** Attributes the base of every line owns: an entry's attribute of that name is dropped (with a warning), as Powertools does. */
const RESERVED = new Set(['level', 'message', 'sampling_rate', 'service', 'timestamp']);

const isLevel = (name: string | undefined): name is LevelName => name !== undefined && Object.hasOwn(LEVELS, name);

/**
 * The level as Powertools picks it: Lambda's advanced logging controls (AWS_LAMBDA_LOG_LEVEL,
 * FATAL read as CRITICAL) first, then POWERTOOLS_LOG_LEVEL or LOG_LEVEL, else INFO.
 */
function levelFromEnv(env: NodeJS.ProcessEnv): number {
  const lambda = env.AWS_LAMBDA_LOG_LEVEL?.trim();
  const alc = lambda === 'FATAL' ? 'CRITICAL' : lambda;
  if (isLevel(alc)) return LEVELS[alc];
  const configured = env.POWERTOOLS_LOG_LEVEL?.trim() || env.LOG_LEVEL?.trim();
  return isLevel(configured) ? LEVELS[configured] : LEVELS.INFO;
}

/** POWERTOOLS_LOGGER_SAMPLE_RATE as printed on every line (0 unless a rate in [0, 1] is set). */
function sampleRateFromEnv(env: NodeJS.ProcessEnv): number {
  const rate = Number(env.POWERTOOLS_LOGGER_SAMPLE_RATE?.trim() || 0);
  return Number.isFinite(rate) && rate >= 0 && rate <= 1 ? rate : 0;
}

/** The X-Ray trace's root id of the current invocation, if any. */
function traceId(): string | undefined {
  const lambda = (globalThis as { awslambda?: { InvokeStore?: { getXRayTraceId(): string | undefined } } }).awslambda;
  const header = lambda?.InvokeStore?.getXRayTraceId() ?? process.env._X_AMZN_TRACE_ID?.trim() ?? '';
  if (header === '') return undefined;
  if (!header.includes('=')) return header;
  const root = header.split(';').find((field) => field.startsWith('Root='));
  return root?.slice('Root='.length);
}

/** The line of the stack an error was thrown at, `file:line` (Powertools' `location`). */
function codeLocation(stack: string | undefined): string {
  for (const line of stack?.split('\n') ?? []) {
    const match = /\(([^()]*?):(\d+?):(\d+?)\)\\?$/.exec(line);
    if (match) return `${match[1]}:${Number(match[2])}`;
  }
  return '';
}

/** An error as a log attribute: name, location, message, stack, cause, then its own fields. */
function formatError(error: Error): Record<string, unknown> {
  const { name, message, stack, cause } = error;
  const formatted: Record<string, unknown> = {
    name,
    location: codeLocation(stack),
    message,
    stack,
    cause: cause instanceof Error ? formatError(cause) : cause,
  };
  for (const key in error)
    if (!['name', 'message', 'stack', 'cause'].includes(key))
      formatted[key] = (error as unknown as Record<string, unknown>)[key];
  return formatted;
}

/**
 * JSON.stringify's replacer for a line: every string passes redact() (a secret never reaches
 * the log, whoever wrote it), errors are spelled out, BigInts become strings, and a circular
 * reference is left out.
 */
function lineReplacer(): (this: unknown, key: string, value: unknown) => unknown {
  const ancestors: unknown[] = [];
  return function (this: unknown, _key: string, value: unknown): unknown {
    let replaced = typeof value === 'string' ? redact(value) : value;
    if (replaced instanceof Error) replaced = formatError(replaced);
    if (typeof replaced === 'bigint') return replaced.toString();
    if (typeof replaced === 'object' && replaced !== null) {
      while (ancestors.length > 0 && ancestors.at(-1) !== this) ancestors.pop();
      if (ancestors.includes(replaced)) return undefined;
      ancestors.push(replaced);
    }
    return replaced;
  };
}

/** The fields of the invocation being served, on every line written during it. */
interface InvocationFields {
  cold_start: boolean;
  function_arn: string;
  function_memory_size: string;
  function_name: string;
  function_request_id: string;
  tenant_id?: string;
}

/** Where lines go: info and below to `stdout`, warn and error to `stderr` (the process's own by default). */
export interface LogStreams {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

/** A structured logger writing JSON lines: info and below to stdout, warn and error to stderr. */
export class JsonLogger {
  readonly #streams: LogStreams;
  readonly #level: number;
  readonly #service: string;
  readonly #sampleRate: number;
  #invocation: InvocationFields | undefined;
  /** Powertools' cold start: the first invocation of an on-demand environment, never a provisioned one. */
  #coldStart: boolean;

  constructor(options: { serviceName: string; env?: NodeJS.ProcessEnv; streams?: LogStreams }) {
    const env = options.env ?? process.env;
    this.#streams = options.streams ?? process;
    this.#service = options.serviceName;
    this.#level = levelFromEnv(env);
    this.#sampleRate = sampleRateFromEnv(env);
    this.#coldStart = env.AWS_LAMBDA_INITIALIZATION_TYPE?.trim() === 'on-demand';
  }

  debug(message: string, attributes?: Record<string, unknown>): void {
    this.#write('DEBUG', message, attributes);
  }

  info(message: string, attributes?: Record<string, unknown>): void {
    this.#write('INFO', message, attributes);
  }

  warn(message: string, attributes?: Record<string, unknown>): void {
    this.#write('WARN', message, attributes);
  }

  error(message: string, attributes?: Record<string, unknown>): void {
    this.#write('ERROR', message, attributes);
  }

  /** The invocation every following line belongs to (its request id, the function, cold start or not). */
  addContext(context: Context & { tenantId?: string }): void {
    this.#invocation = {
      cold_start: this.#coldStart,
      function_arn: context.invokedFunctionArn,
      function_memory_size: context.memoryLimitInMB,
      function_name: context.functionName,
      function_request_id: context.awsRequestId,
      tenant_id: context.tenantId,
    };
    this.#coldStart = false;
  }

  #write(level: LevelName, message: string, attributes: Record<string, unknown> = {}): void {
    if (LEVELS[level] < this.#level) return;
    const line: Record<string, unknown> = {
      level,
      message,
      timestamp: new Date().toISOString(),
      service: this.#service,
      ...this.#invocation,
      sampling_rate: this.#sampleRate,
      xray_trace_id: traceId(),
    };
    for (const [key, value] of Object.entries(attributes)) {
      if (RESERVED.has(key)) this.warn(`The key "${key}" is a reserved key and will be dropped.`);
      else line[key] = value;
    }
    // Empty fields are left out, as Powertools leaves them out.
    const printed = Object.fromEntries(
      Object.entries(line).filter(([, value]) => value !== undefined && value !== null && value !== ''),
    );
    const text = `${JSON.stringify(printed, lineReplacer())}\n`;
    (LEVELS[level] >= LEVELS.WARN ? this.#streams.stderr : this.#streams.stdout).write(text);
  }
}

/** Every string a log line holds passes redact(): a secret never reaches the log, whoever wrote it. */
export const logger = new JsonLogger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'keypool' });

/**
 * The middy middleware every entry point logs through: the Lambda context on each line. The
 * event is never logged, whatever POWERTOOLS_LOGGER_LOG_EVENT says, because an event holds
 * request bodies and those hold secrets.
 */
export function lambdaLogging<Event, Result>(): MiddlewareObj<Event, Result> {
  return {
    before: (request) => {
      logger.addContext(request.context);
    },
  };
}
