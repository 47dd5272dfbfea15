/**
 * The answer to a request no route takes (API Gateway's `$default` route, served by the meta
 * function): 405 with `allow` for a known path, 404 otherwise. Only meta loads this module.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { KeypoolError } from '../domain/errors.js';
import { RouteNotFound, type WithHeaders } from './errors.js';
import { matchRoute } from './routes.js';

export class MethodNotAllowed extends KeypoolError implements WithHeaders {
  readonly code = 'method_not_allowed';
  readonly headers: Record<string, string>;
  constructor(method: string, allowed: string[]) {
    super(`${method.slice(0, 16)} is not allowed here; use ${allowed.join(', ')}`);
    this.headers = { allow: allowed.join(', ') };
  }
}

/** Throws the 405 or 404 a request that no route matched deserves. */
export function unmatchedRoute(event: APIGatewayProxyEventV2): never {
  const method = event.requestContext.http.method;
  const match = matchRoute(method, event.rawPath);
  if (!match.found && match.reason === 'method_not_allowed') throw new MethodNotAllowed(method, match.allowed);
  throw new RouteNotFound(method, event.rawPath);
}
