/**
 * What an API key (the secret) may look like, wherever it enters: the API's import body, the
 * CLI and the migration. One rule, so the same secret cannot be refused by one door and taken
 * by another ("sk-...01 " or "sk-...01\r" becoming a key distinct from "sk-...01").
 */

export const API_KEY_MIN_LENGTH = 8;
export const API_KEY_MAX_LENGTH = 512;

/** 8-512 printable ASCII characters, no space: no provider key has more or other. */
export const API_KEY_PATTERN = /^[\x21-\x7e]{8,512}$/;

/** True when `secret` is a string the API accepts as an API key. Linear time on any input. */
export function isValidApiKey(secret: string): boolean {
  // The length check first keeps a huge string from being scanned at all.
  return secret.length >= API_KEY_MIN_LENGTH && secret.length <= API_KEY_MAX_LENGTH && API_KEY_PATTERN.test(secret);
}
