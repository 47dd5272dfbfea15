/**
 * The middleware chain (lib/shared/middleware.ts) runs as middy does: befores in order, afters
 * and onErrors in reverse, an early answer from a before, an error answered by an onError or
 * rethrown, and a handler that outlives the invocation's deadline turned into an error the
 * chain answers.
 */
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { lambdaChain, type MiddlewareObj } from '../../lib/shared/middleware.js';

type Trace = string[];

function tracing(name: string, trace: Trace): MiddlewareObj<string, string> {
  return {
    before: () => void trace.push(`${name}.before`),
    after: () => void trace.push(`${name}.after`),
    onError: () => void trace.push(`${name}.onError`),
  };
}

const context = (remainingMs = 10_000) => ({ getRemainingTimeInMillis: () => remainingMs }) as Context;

describe('lambdaChain', () => {
  it('runs befores in order, the handler, then afters in reverse', async () => {
    // Prepare
    const trace: Trace = [];
    const handler = lambdaChain<string, string>()
      .use(tracing('a', trace))
      .use([tracing('b', trace)])
      .handler((event) => {
        trace.push('handler');
        return `answer to ${event}`;
      });
    // Act
    const answer = await handler('q', context());
    // Assess
    expect(answer).toBe('answer to q');
    expect(trace).toEqual(['a.before', 'b.before', 'handler', 'b.after', 'a.after']);
  });

  it('answers with what a before returns, skipping the handler and the afters', async () => {
    // Prepare
    const trace: Trace = [];
    const handler = lambdaChain<string, string>()
      .use({ before: () => 'early' })
      .use(tracing('b', trace))
      .handler(() => 'late');
    // Act
    const answer = await handler('q', context());
    // Assess
    expect(answer).toBe('early');
    expect(trace).toEqual([]);
  });

  it('hands an error to the onErrors in reverse, and answers with the response one of them set', async () => {
    // Prepare
    const trace: Trace = [];
    const handler = lambdaChain<string, string>()
      .use({
        onError: (request) => {
          trace.push(`answered ${request.error?.message ?? ''}`);
          request.response = 'error answer';
        },
      })
      .use(tracing('inner', trace))
      .handler(() => {
        throw new Error('boom');
      });
    // Act
    const answer = await handler('q', context());
    // Assess
    expect(answer).toBe('error answer');
    expect(trace).toEqual(['inner.before', 'inner.onError', 'answered boom']);
  });

  it('rethrows an error no onError answered, and a middleware without hooks is refused', async () => {
    // Prepare
    const handler = lambdaChain<string, string>()
      .use({ onError: () => undefined })
      .handler(() => Promise.reject(new Error('unanswered')));
    // Act + Assess
    await expect(handler('q', context())).rejects.toThrow('unanswered');
    expect(() => lambdaChain<string, string>().use({})).toThrow(/at least one key/);
  });

  it("turns a handler that outlives the deadline into a TimeoutError the chain's onError sees", async () => {
    // Prepare
    const seen: string[] = [];
    const handler = lambdaChain<string, string>()
      .use({
        onError: (request) => {
          seen.push(request.error?.name ?? '');
          request.response = 'timed out';
        },
      })
      .handler(() => new Promise<string>((resolve) => setTimeout(() => resolve('too late'), 1_000)));
    // Act
    const answer = await handler('q', context(20));
    // Assess
    expect(answer).toBe('timed out');
    expect(seen).toEqual(['TimeoutError']);
  });
});
