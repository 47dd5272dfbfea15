/**
 * CPU time per measured stretch: this process's (the callers, the SDK, sealing) and, when the
 * benchmark started DynamoDB Local itself on Linux, the JVM's. Both share the machine, so their
 * sum per use is what one use costs it; which of the two grows tells where a contender spends.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ: 100 on Linux). */
const TICKS_PER_SEC = 100;

/**
 * User + system CPU milliseconds from the text of /proc/<pid>/stat, or undefined when it does
 * not parse. The command name (field 2) is in parentheses and may hold spaces and parentheses,
 * so fields are counted after its last ')': utime and stime are fields 14 and 15.
 */
export function cpuMsFromProcStat(stat: string): number | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = stat.slice(close + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return ((utime + stime) * 1000) / TICKS_PER_SEC;
}

/** Another process's CPU milliseconds so far, or undefined where /proc cannot tell (not Linux, gone). */
function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    return cpuMsFromProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * HotSpot's JIT compiler threads are named `C1 CompilerThread<n>` / `C2 CompilerThread<n>`
 * (the kernel keeps the first 15 characters): their CPU is the JVM compiling, not serving.
 */
const COMPILER_THREAD = /^C[12] CompilerThre/;

/** True for the kernel name (`comm`) of a HotSpot JIT compiler thread. */
export function isJitCompilerThread(comm: string): boolean {
  return COMPILER_THREAD.test(comm);
}

/**
 * The CPU milliseconds of another JVM's JIT compiler threads so far (threads that ended took
 * theirs with them), or undefined where /proc cannot tell.
 */
function compilerCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    let total = 0;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        if (!isJitCompilerThread(readFileSync(`/proc/${pid}/task/${task}/comm`, 'utf8'))) continue;
        total += cpuMsFromProcStat(readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8')) ?? 0;
      } catch {
        // The thread ended between the listing and the read.
      }
    }
    return total;
  } catch {
    return undefined;
  }
}

export interface CpuSpent {
  /** this process's CPU ms */
  selfMs: number;
  /** DynamoDB Local's CPU ms, when it could be read at both ends */
  dynamoMs: number | undefined;
  /** of dynamoMs, what its JIT compiler threads spent (a JVM still warming up compiles; a warm one barely does) */
  dynamoJitMs: number | undefined;
}

/** Starts a measurement; the function it returns tells the CPU spent since. */
export function cpuSince(dynamoPid: number | undefined): () => CpuSpent {
  // The other process first: walking its threads is this process's CPU, not the stretch's.
  const dynamo0 = processCpuMs(dynamoPid);
  const jit0 = compilerCpuMs(dynamoPid);
  const self0 = process.cpuUsage();
  return () => {
    const self = process.cpuUsage(self0);
    const dynamo1 = processCpuMs(dynamoPid);
    const jit1 = compilerCpuMs(dynamoPid);
    return {
      selfMs: (self.user + self.system) / 1000,
      dynamoMs: dynamo0 === undefined || dynamo1 === undefined ? undefined : dynamo1 - dynamo0,
      dynamoJitMs: jit0 === undefined || jit1 === undefined ? undefined : Math.max(0, jit1 - jit0),
    };
  };
}
