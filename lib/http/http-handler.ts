/**
 * Builds a Lambda entry point for some routes of the contract: a middy chain that parses and
 * validates the request with the route's schemas, runs the route's implementation with typed
 * input, and turns every error into `{ error, message }` in one place.
 */
import middy, { type MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import * as z from 'zod/mini';
import { InvalidRequest } from '../domain/errors.js';
import { lambdaLogging, logger } from '../observability/logger.js';
import { redact } from '../shared/redact.js';
import { logErrorAnswer } from './error-log.js';
import { errorAnswer, PayloadTooLarge, RouteNotFound } from './errors.js';
import { assertRoutedPath } from './routed-path.js';
import { ROUTES, type RouteKey, type RouteSpec } from './routes.js';
import { validationMessage } from './validation-messages.js';

z.config({ localeError: validationMessage });

export const MAX_BODY_BYTES = 256 * 1024;

type Infer<T> = T extends z.ZodMiniType ? z.infer<T> : undefined;
type Spec<K extends RouteKey> = (typeof ROUTES)[K];

export interface RouteInput<K extends RouteKey> {
  body: Spec<K> extends { body: infer B } ? Infer<B> : undefined;
  query: Spec<K> extends { query: infer Q } ? Infer<Q> : undefined;
  params: Spec<K> extends { params: infer P } ? Infer<P> : undefined;
  headers: Spec<K> extends { headers: infer H } ? Infer<H> : undefined;
  /** who called: the IAM identity API Gateway authorized (undefined on the local server) */
  caller: string | undefined;
  /** the function's time left (ms): a route whose work grows with a pool stops before it */
  remainingMs: () => number;
}

export interface HttpResult {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export type RouteImplementations<K extends RouteKey> = { [P in K]: (input: RouteInput<P>) => Promise<HttpResult> };

export const ok = (body: unknown, status = 200): HttpResult => ({ status, body });

/** `value` as `schema` parses it; InvalidRequest naming each issue's place (under `where`, unless `root` says otherwise). */
function validate(schema: z.ZodMiniType | undefined, value: unknown, where: string, root: string[] = [where]): unknown {
  if (!schema) return undefined;
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const details = parsed.error.issues.map((issue) => {
    // Unknown field names are the caller's text: shortened and passed through redact like any echo.
    const keys =
      'keys' in issue && Array.isArray(issue.keys)
        ? ` (${issue.keys.map((k: string) => k.slice(0, 64)).join(', ')})`
        : '';
    return {
      path: redact([...root, ...issue.path.map(String)].join('.').slice(0, 200)),
      message: redact(`${issue.message}${keys}`),
    };
  });
  throw new InvalidRequest(
    `invalid ${where}: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`.slice(0, 1000),
    details,
  );
}

/** The IAM identity API Gateway's IAM authorizer put in the request context, if any. */
function callerOf(event: APIGatewayProxyEventV2): string | undefined {
  const context = event.requestContext as APIGatewayProxyEventV2['requestContext'] & {
    authorizer?: { iam?: { userArn?: unknown } };
  };
  const arn = context.authorizer?.iam?.userArn;
  return typeof arn === 'string' ? arn.slice(0, 512) : undefined;
}

/**
 * Reads UTF-8 or refuses: Buffer's decoding would put U+FFFD where bytes are not UTF-8, and a
 * label would be stored as other text than was sent. A byte order mark is kept (JSON refuses it).
 */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The body's text: as the event carries it, or its bytes (base64) read as UTF-8. */
function bodyText(event: APIGatewayProxyEventV2): string {
  if (event.body === undefined) return '';
  if (!event.isBase64Encoded) return event.body;
  const bytes = Buffer.from(event.body, 'base64');
  if (bytes.byteLength > MAX_BODY_BYTES) throw new PayloadTooLarge(MAX_BODY_BYTES);
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new InvalidRequest('the body is not UTF-8 text', [{ path: 'body', message: 'not UTF-8' }]);
  }
}

function parseBody(event: APIGatewayProxyEventV2, spec: RouteSpec): unknown {
  const raw = bodyText(event);
  if (Buffer.byteLength(raw, 'utf8') > MAX_BODY_BYTES) throw new PayloadTooLarge(MAX_BODY_BYTES);
  if (!spec.body) {
    if (raw.trim() !== '')
      throw new InvalidRequest('this route takes no body', [{ path: 'body', message: 'must be empty' }]);
    return undefined;
  }
  if (raw.trim() === '') {
    if (spec.bodyOptional) return validate(spec.body, {}, 'body');
    throw new InvalidRequest('a JSON body is required', [{ path: 'body', message: 'required' }]);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new InvalidRequest('the body is not valid JSON', [{ path: 'body', message: 'malformed JSON' }]);
  }
  return validate(spec.body, json, 'body');
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  };
}

/** A request for a route this function does not serve (API Gateway never sends one). */
function notServedHere(event: APIGatewayProxyEventV2): never {
  throw new RouteNotFound(event.requestContext.http.method, event.rawPath);
}

/** Every error becomes `{ error, message }` here; unknown ones are logged without details a secret could hide in. */
const jsonErrors: MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2> = {
  // Registered before the handler runs and seen last on errors: every error becomes JSON here.
  onError: (request) => {
    const answer = errorAnswer(request.error);
    logErrorAnswer(request.error, answer);
    request.response = json(answer.status, answer.body, answer.headers);
    const event = request.event;
    logger.info('request', { route: event.routeKey, status: answer.status, error: answer.body.error });
  },
};

export interface HttpHandlerOptions {
  /** answers requests no route of this function matches; the meta function serves `$default` with it */
  unmatched?: (event: APIGatewayProxyEventV2) => never;
  /**
   * the function's own middlewares (metrics), inside the error mapping: their `after` sees the
   * route's answer, their `onError` the route's error before it becomes an answer
   */
  middlewares?: readonly MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>[];
  /**
   * a rule across a route's parsed query and body (`{ query, body }`), checked once each is
   * valid; given by the function that serves the route, so no other bundles it
   */
  requestRules?: Partial<Record<RouteKey, z.ZodMiniType>>;
}

/** The middy-wrapped handler for the given route implementations. */
export function httpHandler<K extends RouteKey>(
  implementations: RouteImplementations<K>,
  options: HttpHandlerOptions = {},
) {
  const unmatched = options.unmatched ?? notServedHere;
  const rules = options.requestRules ?? {};
  const routes = implementations as unknown as Record<string, (input: RouteInput<RouteKey>) => Promise<HttpResult>>;
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>()
    .use(lambdaLogging())
    .use(jsonErrors)
    .use([...(options.middlewares ?? [])])
    .handler(async (event: APIGatewayProxyEventV2, context: Context) => {
      // The pool a route acts on is the path parameter API Gateway matched, and the path IAM
      // authorized must name it: no dot segments, no other pool (lib/http/routed-path.ts).
      assertRoutedPath([event.rawPath, event.requestContext.http.path], event.pathParameters?.pool);
      const implementation = routes[event.routeKey];
      const spec = (ROUTES as Record<string, RouteSpec | undefined>)[event.routeKey];
      if (!implementation || !spec) return unmatched(event);
      const input = {
        body: parseBody(event, spec),
        query: validate(spec.query, event.queryStringParameters ?? {}, 'query'),
        params: validate(spec.params, event.pathParameters ?? {}, 'path'),
        headers: validate(spec.headers, event.headers, 'headers'),
        caller: callerOf(event),
        remainingMs: () => context.getRemainingTimeInMillis(),
      } as RouteInput<RouteKey>;
      // Its issues name their place in the query or the body (`body.keys`).
      validate(rules[event.routeKey as RouteKey], { query: input.query, body: input.body }, 'request', []);
      const result = await implementation(input);
      logger.info('request', { route: event.routeKey, status: result.status });
      return json(result.status, result.body, result.headers);
    });
}
