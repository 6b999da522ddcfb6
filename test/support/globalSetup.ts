/**
 * One temporary directory per test run: TMPDIR points into it for the test workers and every
 * process they start, so whatever a test creates with `os.tmpdir()` (keys, sshd directories,
 * ts-node caches) lands there, and teardown removes it. A test run leaves nothing in /tmp.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

export const RUN_TMP_ENV = "ATTIC_INFRA_TEST_TMP";

export default function setup(): () => void {
  const previous = process.env.TMPDIR;
  const root = mkdtempSync(path.join(tmpdir(), "attic-infra-test-"));
  process.env.TMPDIR = root;
  process.env[RUN_TMP_ENV] = root;
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    rmSync(root, { recursive: true, force: true });
    if (existsSync(root)) throw new Error(`the test run's temporary directory ${root} could not be removed`);
  };
}
