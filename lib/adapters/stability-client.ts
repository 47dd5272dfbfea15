/**
 * Stability AI's balance and account endpoints (`GET {base}/v1/user/balance`, `GET
 * {base}/v1/user/account`), classified for maintenance and for an import's check.
 * The provider's bodies are never logged or returned: a 401's message can echo part of the
 * key, so only the status and the body's `name` (a short code like "unauthorized") leave here.
 * Redirects are refused, not followed: the base URL is checked once (lib/config.ts), and a
 * 3xx would let whoever answers it choose another host for the key and for the balance that
 * revives or exhausts it. Bodies are read up to MAX_PROVIDER_BODY_BYTES, never whole.
 */
import * as z from 'zod/mini';
import { ACCOUNT_PATTERN } from '../domain/accounts.js';
import { redact } from '../shared/redact.js';
import type { AccountAnswer, AccountProvider, BalanceAnswer, BalanceProvider } from '../ports/balance-provider.js';
import { isDocumentedError } from '../domain/stability-errors.js';

export const DEFAULT_PROVIDER_TIMEOUT_MS = 10_000;
/** A balance or error answer is well under 1 KiB; past this the answer is refused unread. */
export const MAX_PROVIDER_BODY_BYTES = 64 * 1024;

/** The answer's body was longer than MAX_PROVIDER_BODY_BYTES. */
class BodyTooLarge extends Error {
  override readonly name = 'BodyTooLarge';
}

/**
 * The body as text, read chunk by chunk and abandoned as soon as it passes `limit` bytes, so a
 * provider (or whoever answers for it) cannot make a run buffer an unbounded answer.
 */
async function readCapped(response: Response, limit: number): Promise<string> {
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel().catch(() => undefined);
    throw new BodyTooLarge();
  }
  if (!response.body) return '';
  // Typed as ReadableStream<any> by the DOM-less lib; fetch bodies are bytes.
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw new BodyTooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export interface StabilityClientOptions {
  /** e.g. https://api.stability.ai (STABILITY_API_BASE_URL) */
  baseUrl: string;
  /** per request, headers and body included */
  timeoutMs?: number;
  /** structured warnings; attributes never hold a secret or a provider body */
  warn?: (message: string, attributes: Record<string, unknown>) => void;
  fetch?: typeof fetch;
}

const BalanceBody = z.object({ credits: z.number().check(z.gte(0)) });
/** `GET /v1/user/account`: the user's organizations, one of them the default (other fields are not read). */
const AccountBody = z.object({
  organizations: z.array(
    z.object({ id: z.string().check(z.regex(ACCOUNT_PATTERN)), is_default: z.optional(z.boolean()) }),
  ),
});

/** The body parsed by `schema`, or undefined when it is not JSON of that shape. */
function parseJson<T>(schema: z.ZodMiniType<T>, text: string): T | undefined {
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

const ErrorName = z.object({ name: z.string().check(z.regex(/^[a-z_]{1,40}$/)) });

/** The body's `name` when it is a short code; nothing else of a provider body is kept. */
function errorName(text: string): string | undefined {
  return parseJson(ErrorName, text)?.name;
}

/** Why a request threw, in a few secret-free words. */
function failureReason(error: unknown, timeoutMs: number): string {
  const e = error as { name?: string; cause?: { code?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `timeout after ${timeoutMs} ms`;
  const code = e.cause?.code;
  return `network error${typeof code === 'string' && /^[A-Z_]{2,40}$/.test(code) ? ` ${code}` : ''}`;
}

export class StabilityClient implements BalanceProvider, AccountProvider {
  private readonly balanceUrl: string;
  private readonly accountUrl: string;
  private readonly timeoutMs: number;
  private readonly warn: NonNullable<StabilityClientOptions['warn']>;
  private readonly fetch: typeof fetch;

  constructor(options: StabilityClientOptions) {
    const base = options.baseUrl.replace(/\/+$/, '');
    this.balanceUrl = `${base}/v1/user/balance`;
    this.accountUrl = `${base}/v1/user/account`;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_PROVIDER_TIMEOUT_MS;
    this.warn = options.warn ?? (() => undefined);
    this.fetch = options.fetch ?? fetch;
  }

  /** The key's balance, or why it could not be read; resolves within the timeout, never throws. */
  async balance(apiKey: string): Promise<BalanceAnswer> {
    const answer = await this.get(this.balanceUrl, apiKey, 'balance check');
    if (answer.kind !== 'ok') return answer;
    const parsed = parseJson(BalanceBody, answer.text);
    if (parsed) return { kind: 'balance', credits: parsed.credits };
    this.warn('balance answer unreadable', { status: 200 });
    return { kind: 'error', reason: 'unreadable balance answer (200)' };
  }

  /**
   * The account the key belongs to: its default organization's id (`organizations[]` with
   * `is_default`, else the only one), or why it could not be read; never throws.
   */
  async account(apiKey: string): Promise<AccountAnswer> {
    const answer = await this.get(this.accountUrl, apiKey, 'account check');
    if (answer.kind !== 'ok') return answer;
    const parsed = parseJson(AccountBody, answer.text);
    const organizations = parsed?.organizations ?? [];
    const chosen =
      organizations.find((o) => o.is_default) ?? (organizations.length === 1 ? organizations[0] : undefined);
    if (chosen) return { kind: 'account', account: chosen.id };
    this.warn('account answer unreadable', { status: 200 });
    return { kind: 'error', reason: 'unreadable account answer (200): no default organization' };
  }

  /** One GET with the key, classified up to its 200 body; resolves within the timeout, never throws. */
  private async get(
    url: string,
    apiKey: string,
    what: string,
  ): Promise<{ kind: 'ok'; text: string } | Exclude<BalanceAnswer, { kind: 'balance' }>> {
    let status: number;
    let text: string;
    try {
      // One signal for the headers and the body: a provider that stalls mid-body still times out.
      const response = await this.fetch(url, {
        headers: { authorization: `Bearer ${apiKey}`, accept: 'application/json' },
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      status = response.status;
      // Node answers a manual redirect with its 3xx; a browser-style fetch with an opaque one.
      if ((status >= 300 && status < 400) || response.type === 'opaqueredirect') {
        await response.body?.cancel().catch(() => undefined);
        const reason = `provider answered ${status} (redirects are refused)`;
        this.warn(`${what} redirected`, { status });
        return { kind: 'error', reason };
      }
      text = await readCapped(response, MAX_PROVIDER_BODY_BYTES);
    } catch (error) {
      const reason =
        error instanceof BodyTooLarge
          ? `provider answer too large (over ${MAX_PROVIDER_BODY_BYTES} bytes)`
          : failureReason(error, this.timeoutMs);
      this.warn(`${what} failed`, { reason });
      return { kind: 'error', reason };
    }
    if (status === 200) return { kind: 'ok', text };
    const name = errorName(text);
    // 401 (unknown key) and 403 (key refused) are the provider's word that the key is no good,
    // only in its documented error shape: a firewall's page or a proxy's answer is not.
    if (status === 401 || status === 403) {
      if (isDocumentedError(text)) return { kind: 'invalid_key' };
      this.warn(`${what} refused outside the documented error shape`, { status });
      return { kind: 'provider_unavailable', reason: `provider answered ${status} outside its documented error shape` };
    }
    if (status === 429) {
      this.warn(`${what} rate limited`, { status });
      return { kind: 'rate_limited' };
    }
    const reason = `provider answered ${status}${name ? ` ${name}` : ''}`;
    this.warn(`${what} failed`, { status, name: name === undefined ? undefined : redact(name) });
    return { kind: 'error', reason };
  }
}
