/** Domain and edge errors to HTTP answers, in one place. A 500 says "internal error" and nothing more. */
import { KeypoolError } from '../domain/errors.js';

export class PayloadTooLarge extends KeypoolError {
  readonly code = 'payload_too_large';
  constructor(limit: number) {
    super(`the request body is over ${limit / 1024} KB`);
  }
}

export class RouteNotFound extends KeypoolError {
  readonly code = 'not_found';
  constructor(method: string, path: string) {
    super(`no route for ${method} ${path.slice(0, 200)}`);
  }
}

export class MethodNotAllowed extends KeypoolError {
  readonly code = 'method_not_allowed';
  constructor(
    method: string,
    readonly allowed: string[],
  ) {
    super(`${method.slice(0, 16)} is not allowed here; use ${allowed.join(', ')}`);
  }
}

const STATUS: Record<string, number> = {
  invalid_request: 400,
  not_found: 404,
  key_not_found: 404,
  lease_not_found: 404,
  method_not_allowed: 405,
  no_usable_key: 409,
  lease_expired: 410,
  payload_too_large: 413,
};

export interface ErrorBody {
  error: string;
  message: string;
  details?: { path: string; message: string }[];
}

/** The status and body for an error; anything that is not a KeypoolError is an internal error. */
export function errorAnswer(error: unknown): { status: number; body: ErrorBody; known: boolean } {
  if (error instanceof KeypoolError && STATUS[error.code] !== undefined) {
    const details = 'details' in error && Array.isArray(error.details) && error.details.length ? { details: error.details as ErrorBody['details'] } : {};
    return { status: STATUS[error.code] ?? 500, body: { error: error.code, message: error.message, ...details }, known: true };
  }
  return { status: 500, body: { error: 'internal_error', message: 'internal error' }, known: false };
}
