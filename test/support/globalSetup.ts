/**
 * One temporary directory per test run: TMPDIR points into it for the test workers and every
 * process they start, so whatever a test creates with `os.tmpdir()` (keys, sshd directories,
 * ts-node and tsx caches) lands there, and teardown removes it (or fails the run). Entries that
 * appeared in the system's temporary directory meanwhile are listed as a warning: something ignored
 * TMPDIR, or another job on the machine wrote there (so they do not fail the run).
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

export const RUN_TMP_ENV = "ATTIC_INFRA_TEST_TMP";

export default function setup(): () => void {
  const previous = process.env.TMPDIR;
  const system = tmpdir();
  const before = new Set(readdirSync(system));
  const root = mkdtempSync(path.join(system, "attic-infra-test-"));
  process.env.TMPDIR = root;
  process.env[RUN_TMP_ENV] = root;
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    rmSync(root, { recursive: true, force: true });
    if (existsSync(root)) throw new Error(`the test run's temporary directory ${root} could not be removed`);
    const left = readdirSync(system).filter((f) => !before.has(f));
    if (left.length > 0)
      console.warn(
        `WARNING: new in ${system} during the test run (ours or another job's): ${left.join(", ")}`,
      );
  };
}
