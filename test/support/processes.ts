/**
 * Ending what a scenario started: its processes are found by their environment
 * (/proc/<pid>/environ, the environment each was started with), which they inherit from the session
 * or unit that started them, so they are found even after their parent is gone.
 */
import { readdirSync, readFileSync } from "node:fs";
import { scaled } from "./timeScale";

function processesWhose(matches: (environment: string[]) => boolean): number[] {
  return readdirSync("/proc")
    .filter((pid) => {
      if (!/^\d+$/.test(pid) || Number(pid) === process.pid) return false;
      try {
        return matches(readFileSync(`/proc/${pid}/environ`, "latin1").split("\0"));
      } catch {
        return false; // gone meanwhile, or not ours to read
      }
    })
    .map(Number);
}

function signal(pids: number[], name: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, name);
    } catch {
      // Gone meanwhile.
    }
  }
}

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Ends every process whose environment `matches`: SIGTERM first (their traps clean up), SIGKILL for
 * what is left after a moment, again until none is left — a shell forking meanwhile cannot leave a
 * child behind. A killed process leaves /proc (or is a zombie, whose environ reads empty) at once.
 */
export function endProcessesWhose(matches: (environment: string[]) => boolean): void {
  const found = processesWhose(matches);
  if (found.length === 0) return;
  signal(found, "SIGTERM");
  const deadline = Date.now() + scaled(1).ms;
  while (Date.now() < deadline && processesWhose(matches).length > 0) sleep(20);
  for (let left = processesWhose(matches); left.length > 0; left = processesWhose(matches)) {
    signal(left, "SIGKILL");
    sleep(10);
  }
}
