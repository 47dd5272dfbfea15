/**
 * The middleware chain every Lambda entry point is built with, written as middy's docs write
 * it — `lambdaChain<Event, Result>().use(...).handler(fn)`, middlewares first, the handler
 * last — and run as @middy/core 6 runs it: `before` in the order registered, `after` and
 * `onError` in reverse; a `before` that returns a value answers with it (the handler and the
 * `after`s skipped); on an error the response is cleared, the `onError`s run, and the error is
 * rethrown unless one of them set a response; and the handler is raced against the invocation's
 * deadline less 5 ms, so a timeout is an error the chain answers rather than Lambda's.
 *
 * Why not @middy/core itself: its module loads node:stream/web (for streamed responses, which
 * keypool never sends) at import, ~2 ms of every cold start, for the ~40 lines here.
 */

import type { Context } from 'aws-lambda';

/** What a middleware sees: the invocation, and the response or error so far. */
export interface MiddlewareRequest<Event, Result> {
  event: Event;
  context: Context;
  response: Result | undefined;
  error: Error | undefined;
  internal: Record<string, unknown>;
}

type Hook<Event, Result> = (request: MiddlewareRequest<Event, Result>) => unknown;

/** A middleware: any of the three hooks. */
export interface MiddlewareObj<Event, Result> {
  before?: Hook<Event, Result>;
  after?: Hook<Event, Result>;
  onError?: Hook<Event, Result>;
}

/** middy's timeoutEarlyInMillis default: the handler gives up this long before Lambda would. */
const TIMEOUT_EARLY_MS = 5;

/** middy's early-timeout error (name TimeoutError, so the chain's onError sees a timeout). */
function timeoutError(): Error {
  const error = new Error('[AbortError]: The operation was aborted.');
  error.name = 'TimeoutError';
  return error;
}

/** The response so far, read through a call: a hook may have set it since the last assignment the checker saw. */
function responseOf<Event, Result>(request: MiddlewareRequest<Event, Result>): Result | undefined {
  return request.response;
}

/** Runs `hooks` in order; true when one of them answered early (returned a value). */
async function runHooks<Event, Result>(
  request: MiddlewareRequest<Event, Result>,
  hooks: readonly Hook<Event, Result>[],
): Promise<boolean> {
  for (const hook of hooks) {
    const answer = await hook(request);
    if (answer !== undefined) {
      request.response = answer as Result;
      return true;
    }
  }
  return false;
}

/** A handler with its middlewares: call `.use()` for each, then `.handler()` once. */
export interface LambdaChain<Event, Result> {
  (event: Event, context: Context): Promise<Result>;
  use(middlewares: MiddlewareObj<Event, Result> | readonly MiddlewareObj<Event, Result>[]): LambdaChain<Event, Result>;
  handler(fn: (event: Event, context: Context) => Result | Promise<Result>): LambdaChain<Event, Result>;
}

/** An empty chain for a Lambda handler of `Event` answering `Result` (see the module comment). */
export function lambdaChain<Event, Result>(): LambdaChain<Event, Result> {
  const befores: Hook<Event, Result>[] = [];
  const afters: Hook<Event, Result>[] = [];
  const onErrors: Hook<Event, Result>[] = [];
  let handle: (event: Event, context: Context) => Result | Promise<Result> = () => undefined as Result;

  // A test may call a handler without a context, as middy allows: no deadline then.
  const run = async (event: Event, context: Context = {} as Context): Promise<Result> => {
    const request: MiddlewareRequest<Event, Result> = {
      event,
      context,
      response: undefined,
      error: undefined,
      internal: {},
    };
    let timer: NodeJS.Timeout | undefined;
    try {
      if (!(await runHooks(request, befores))) {
        const handled = Promise.resolve(handle(event, context));
        const remaining = (context as Partial<Context>).getRemainingTimeInMillis?.();
        request.response =
          remaining === undefined
            ? await handled
            : await Promise.race([
                handled,
                new Promise<never>((_, reject) => {
                  timer = setTimeout(() => reject(timeoutError()), remaining - TIMEOUT_EARLY_MS);
                }),
              ]);
        clearTimeout(timer);
        await runHooks(request, afters);
      }
    } catch (error) {
      clearTimeout(timer);
      request.response = undefined;
      request.error = error as Error;
      try {
        await runHooks(request, onErrors);
      } catch (unhandled) {
        // As middy: the error an onError threw, carrying the one it was handling.
        (unhandled as { originalError?: unknown }).originalError = request.error;
        throw unhandled;
      }
      if (responseOf(request) === undefined) throw request.error;
    }
    return request.response as Result;
  };

  const chain = run as LambdaChain<Event, Result>;
  chain.use = (middlewares) => {
    for (const middleware of Array.isArray(middlewares) ? middlewares : [middlewares]) {
      const { before, after, onError } = middleware as MiddlewareObj<Event, Result>;
      if (!before && !after && !onError)
        throw new Error('Middleware must be an object containing at least one key among "before", "after", "onError"');
      if (before) befores.push(before);
      if (after) afters.unshift(after);
      if (onError) onErrors.unshift(onError);
    }
    return chain;
  };
  chain.handler = (fn) => {
    handle = fn;
    return chain;
  };
  return chain;
}
