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

  it('leaves a request id (a UUID) and an X-Ray trace id whole: log lines are joined to invocations by them', () => {
    const line = 'function_request_id 145f010e-7051-4824-a075-effd334982ee trace 1-5759e988-bd862e3fe1be46a994272793';
    expect(redact(line)).toBe(line);
  });

  it('still masks a 32-character run that only contains a UUID, and a UUID-shaped secret it handled', () => {
    // Prepare
    const uuid = '0d4c3a3e-9b7f-4f59-8c1e-2a6b5d4e3f21';
    rememberSecret('9f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e8');
    // Act / Assess
    expect(redact(`token x${uuid}`)).toBe('token x0d...[redacted]');
    expect(redact(`hex ${'a'.repeat(32)}`)).toBe('hex aaa...[redacted]');
    expect(redact('key 9f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e8')).toBe('key 9f1...[redacted]');
  });
});
