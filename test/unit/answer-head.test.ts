/**
 * A kept answer's head, the bytes both answer stores frame: its format is what answers already
 * kept were written in, so it must not change under them.
 */
import { describe, expect, it } from 'vitest';
import { decodeAnswerHead, encodeAnswerHead, MAX_ANSWER_HEAD_BYTES } from '../../lib/adapters/answer-head.js';

describe('answer head', () => {
  it('is the status and headers as UTF-8 JSON, in that order, and reads back as written', () => {
    // Prepare
    const head = { status: 201, headers: { 'content-type': 'image/png', 'x-name': 'é"' } };
    // Act
    const bytes = encodeAnswerHead(head);
    // Assess
    expect(bytes.toString('utf8')).toBe('{"status":201,"headers":{"content-type":"image/png","x-name":"é\\""}}');
    expect(decodeAnswerHead(bytes)).toEqual(head);
  });

  it('refuses a head over its bound, so the answer is not kept', () => {
    // Prepare
    const head = { status: 200, headers: { 'x-big': 'a'.repeat(MAX_ANSWER_HEAD_BYTES) } };
    // Act
    const encode = (): Buffer => encodeAnswerHead(head);
    // Assess
    expect(encode).toThrow(RangeError);
  });
});
