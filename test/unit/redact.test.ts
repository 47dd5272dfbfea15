/** redact (lib/shared/redact.ts): what keeps secrets out of logs and errors. */
import { describe, expect, it } from 'vitest';
import { redact, rememberSecret } from '../../lib/shared/redact.js';

describe('redact', () => {
  it('masks anything shaped like a credential and leaves ids alone', () => {
    const text = `provider said: bad key sk-test-${'a'.repeat(40)} for k_0123456789abcdef01234567`;
    expect(redact(text)).toBe('provider said: bad key sk-...[redacted] for k_0123456789abcdef01234567');
  });

  it("masks the README's own 28-character sample key (shorter than the 32-character rule)", () => {
    expect(redact('{"apiKey":"sk-test-0123456789abcdef0123"}')).toBe('{"apiKey":"sk-...[redacted]"}');
  });

  it('masks every secret the process handled, whatever its shape or length', () => {
    // Prepare: a short provider key with no telling prefix, remembered as a key would be.
    rememberSecret('Zq9#short!');
    // Act
    const out = redact('the provider echoed Zq9#short! twice: Zq9#short!');
    // Assess
    expect(out).toBe('the provider echoed Zq9...[redacted] twice: Zq9...[redacted]');
  });

  it('leaves an AWS ARN whole: an audit line names the role that called', () => {
    const arn = 'arn:aws:sts::123456789012:assumed-role/image-generation-worker/i-0abcdef1234567890';
    expect(redact(`caller ${arn}`)).toBe(`caller ${arn}`);
  });
});
