import { describe, expect, it } from 'vitest';
import { cpuMsFromProcStat, cpuSince, isJitCompilerThread } from '../../../bench/cpu.js';

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
    const { selfMs, dynamoMs, dynamoJitMs } = spent();
    expect(x).toBeGreaterThan(0);
    expect(selfMs).toBeGreaterThan(0);
    expect(dynamoMs).toBeUndefined();
    expect(dynamoJitMs).toBeUndefined();
  });

  it("tells HotSpot's JIT compiler threads by their kernel names (15 characters kept)", () => {
    expect(['C2 CompilerThre', 'C1 CompilerThre\n'].every(isJitCompilerThread)).toBe(true);
    expect(['qtp1781697-18', 'SQLiteQueue[]', 'GC Thread#0', 'VM Thread', 'node'].some(isJitCompilerThread)).toBe(
      false,
    );
  });

  it.runIf(process.platform === 'linux')(
    "reads another process's compiler threads apart: none in a process without a JVM",
    () => {
      // Prepare: this Node.js process stands in for the other side; it has no HotSpot compiler.
      const spent = cpuSince(process.pid);
      let x = 0;
      for (let i = 0; i < 2_000_000; i++) x += i % 7;
      // Act
      const { dynamoMs, dynamoJitMs } = spent();
      // Assess
      expect(x).toBeGreaterThan(0);
      expect(dynamoMs).toBeGreaterThanOrEqual(0);
      expect(dynamoJitMs).toBe(0);
    },
  );
});
