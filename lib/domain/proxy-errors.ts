/**
 * What a proxied call answers when the provider gave no answer to pass on: it timed out (504)
 * or failed (502: no connection could be made, or it was reset) on the last key tried. Each
 * carries keypool's answer headers (the key tried, the attempts, the outcome), as every proxied
 * answer does; the message says what happened, never the key.
 */
import { KeypoolError } from './errors.js';
import type { ProxyOutcome } from './provider-answers.js';
import { keypoolHeaders } from './proxy-headers.js';

/** What the last attempt came to: which key, after how many attempts, with which outcome. */
export interface LastAttempt {
  keyId: string;
  attempts: number;
  outcome: ProxyOutcome;
}

/** The provider did not answer within the pool's proxyTimeoutSeconds, after the request went out: the use stays counted. */
export class ProviderTimeout extends KeypoolError {
  readonly code = 'provider_timeout';
  readonly headers: Record<string, string>;
  constructor(last: LastAttempt, timeoutSeconds: number) {
    super(
      `the provider did not answer within ${timeoutSeconds} s (the pool's proxyTimeoutSeconds); the request went out, so its use stays counted (outcome ${last.outcome}) and no other key was tried`,
    );
    this.headers = keypoolHeaders(last.keyId, last.attempts, last.outcome);
  }
}

/** The provider could not be reached, or the connection broke before its answer. */
export class ProviderFailed extends KeypoolError {
  readonly code = 'provider_failed';
  readonly headers: Record<string, string>;
  constructor(last: LastAttempt, sent: boolean) {
    super(
      sent
        ? `the connection to the provider broke after the request went out; its use stays counted (outcome ${last.outcome})`
        : `the provider could not be reached on any of the ${last.attempts} key(s) tried; nothing was sent, nothing counted`,
    );
    this.headers = keypoolHeaders(last.keyId, last.attempts, last.outcome);
  }
}
