/**
 * The structured logger (lib/observability/logger.ts): the line shape Powertools Logger wrote
 * before it (field order included), its level rules, and that no string of a line escapes
 * redact(), however deep or whatever wrote it.
 */
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { JsonLogger } from '../../lib/observability/logger.js';

const SECRET = `sk-test-${'q'.repeat(40)}`;

function recording(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const logger = new JsonLogger({
    serviceName: 'keypool',
    env,
    streams: { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t) } },
  });
  const parsed = (lines: string[]) => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  return { logger, out, err, parsed };
}

const context = {
  functionName: 'keypool-lease',
  awsRequestId: '145f010e-7051-4824-a075-effd334982ee',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:keypool-lease',
  memoryLimitInMB: '512',
} as Context;

describe('JsonLogger', () => {
  it("writes Powertools' line: base fields in its order, the invocation's fields, then the entry's own", () => {
    // Prepare
    const { logger, out, parsed } = recording({ AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand' });
    // Act
    logger.info('before any invocation', { pool: 'p' });
    logger.addContext(context);
    logger.info('request', { route: 'POST /pools/{pool}/leases', status: 200 });
    logger.addContext(context);
    logger.info('request', { status: 200 });
    // Assess
    const [bare, first, second] = parsed(out);
    expect(Object.keys(bare ?? {})).toEqual(['level', 'message', 'timestamp', 'service', 'sampling_rate', 'pool']);
    expect(Object.keys(first ?? {})).toEqual([
      'level',
      'message',
      'timestamp',
      'service',
      'cold_start',
      'function_arn',
      'function_memory_size',
      'function_name',
      'function_request_id',
      'sampling_rate',
      'route',
      'status',
    ]);
    expect(first).toMatchObject({
      level: 'INFO',
      message: 'request',
      service: 'keypool',
      cold_start: true,
      function_request_id: context.awsRequestId,
      sampling_rate: 0,
    });
    expect(String(first?.timestamp)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(second?.cold_start).toBe(false);
  });

  it('redacts every string of a line, nested ones and error messages included', () => {
    // Prepare
    const { logger, err } = recording();
    // Act
    logger.error('failed', {
      reason: `provider said ${SECRET}`,
      nested: { deeper: [SECRET] },
      error: new Error(`bad key ${SECRET}`),
    });
    // Assess
    expect(err).toHaveLength(1);
    expect(err.join('')).not.toContain(SECRET);
    expect(err.join('')).toContain('sk-...[redacted]');
  });

  it('sends info to stdout and warn and error to stderr, below the level nothing', () => {
    // Prepare
    const { logger, out, err } = recording({ POWERTOOLS_LOG_LEVEL: 'WARN' });
    // Act
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    // Assess
    expect(out).toEqual([]);
    expect(err.map((line) => (JSON.parse(line) as { message: string }).message)).toEqual(['w', 'e']);
  });

  it("takes Lambda's log level over POWERTOOLS_LOG_LEVEL, and SILENT writes nothing", () => {
    // Prepare
    const alc = recording({ AWS_LAMBDA_LOG_LEVEL: 'ERROR', POWERTOOLS_LOG_LEVEL: 'DEBUG' });
    const silent = recording({ POWERTOOLS_LOG_LEVEL: 'SILENT' });
    // Act
    alc.logger.warn('w');
    alc.logger.error('e');
    silent.logger.error('e');
    // Assess
    expect(alc.err).toHaveLength(1);
    expect(silent.err).toEqual([]);
  });

  it('leaves out empty fields and drops reserved ones with a warning; BigInts become strings, cycles are cut', () => {
    // Prepare
    const { logger, out, err, parsed } = recording();
    const cycle: Record<string, unknown> = { name: 'loop' };
    cycle.self = cycle;
    // Act
    logger.info('m', { empty: '', none: null, missing: undefined, level: 'DEBUG', big: 12n, cycle });
    // Assess
    expect(parsed(out)[0]).toEqual(expect.objectContaining({ level: 'INFO', big: '12', cycle: { name: 'loop' } }));
    expect(Object.keys(parsed(out)[0] ?? {})).not.toContain('empty');
    expect(Object.keys(parsed(out)[0] ?? {})).not.toContain('none');
    expect(parsed(err)[0]?.message).toBe('The key "level" is a reserved key and will be dropped.');
  });

  it('carries the X-Ray root trace id of the invocation', () => {
    // Prepare
    const { logger, out, parsed } = recording();
    const before = process.env._X_AMZN_TRACE_ID;
    process.env._X_AMZN_TRACE_ID = 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1';
    try {
      // Act
      logger.info('m');
    } finally {
      if (before === undefined) delete process.env._X_AMZN_TRACE_ID;
      else process.env._X_AMZN_TRACE_ID = before;
    }
    // Assess
    expect(parsed(out)[0]?.xray_trace_id).toBe('1-5759e988-bd862e3fe1be46a994272793');
  });
});
