import { describe, expect, it } from 'vitest';
import { cpuMsFromProcStat, cpuSince } from './cpu.js';

describe('benchmark CPU time', () => {
  it('reads utime + stime after the command name, even when the name holds spaces and parentheses', () => {
    // Fields 14 and 15 (utime, stime) are 250 and 50 ticks: 3,000 ms.
    const stat = '4242 (java (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 30 0 100 0 0';
    expect(cpuMsFromProcStat(stat)).toBe(3000);
  });

  it('answers undefined for text that is not a stat line', () => {
    expect(cpuMsFromProcStat('no parenthesis here')).toBeUndefined();
    expect(cpuMsFromProcStat('1 (x) S')).toBeUndefined();
  });

  it('measures this process and leaves the other side undefined without a process to read', () => {
    const spent = cpuSince(undefined);
    let x = 0;
    for (let i = 0; i < 2_000_000; i++) x += i % 7;
    const { selfMs, dynamoMs } = spent();
    expect(x).toBeGreaterThan(0);
    expect(selfMs).toBeGreaterThan(0);
    expect(dynamoMs).toBeUndefined();
  });
});
