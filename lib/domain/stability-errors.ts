/**
 * Stability AI's documented error shape, decided once (in the domain: the outcome table's input
 * depends on it): the balance client (maintenance) and proxy mode's use case read a
 * 401/402/403/429 as the provider's word about a key only when its body has this shape.
 * Anything else (a firewall's HTML page, a proxy's own JSON, an empty body) says nothing about
 * the key: the provider could not be asked.
 *
 * The shape (platform.stability.ai API reference): a JSON object with a string `id` (the
 * error's own identifier, for support), a string `name` and either `errors`, an array of
 * strings (v2beta, v2alpha), or `message`, a string (v1, e.g. /v1/user/balance). The `id` is
 * what sets it apart from the JSON of whatever may stand in front of the provider: an
 * authorization middleware's error or a serialized JavaScript Error has a `name` and a
 * `message` too, never an error id.
 */
import * as z from 'zod/mini';

const ErrorId = z.string().check(z.minLength(1));

const DocumentedError = z.union([
  z.object({ id: ErrorId, name: z.string(), errors: z.array(z.string()) }),
  z.object({ id: ErrorId, name: z.string(), message: z.string() }),
]);

/** Whether a body is an error in Stability's documented shape (`id` and `name`, with `errors` or `message`). */
export function isDocumentedError(text: string): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return false;
  }
  return DocumentedError.safeParse(parsed).success;
}
