/**
 * Last line of defence for logs: anything shaped like a credential (a run of 32 or more
 * token characters) is masked. keypool never logs a secret on purpose; this catches what a
 * library might echo (a provider's error body, an SDK message).
 */
const SECRET_LIKE = /[A-Za-z0-9_\-+/=]{32,}/g;

export function redact(text: string): string {
  return text.replace(SECRET_LIKE, (run) => `${run.slice(0, 3)}...[redacted]`);
}
