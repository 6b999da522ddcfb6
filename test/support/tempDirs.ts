/**
 * Every temporary directory the tests and the synth harness create lives under one directory per
 * test run, which the global teardown (test/support/globalSetup.ts) removes: a test run leaves
 * nothing behind in the system's temp directory.
 */
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

/** The variable naming the run's directory; set by the global setup, inherited by the workers. */
export const TEMP_ROOT_ENV = "ATTIC_INFRA_TEST_TMP";
export const TEMP_PREFIX = "attic-infra-test-";

/** The directory to create temporary directories in: the test run's, or the system's. */
export function tempRoot(): string {
  const root = process.env[TEMP_ROOT_ENV];
  if (!root) return tmpdir();
  mkdirSync(root, { recursive: true });
  return root;
}

/** A new temporary directory under the run's directory. */
export function makeTempDir(prefix: string): string {
  return mkdtempSync(path.join(tempRoot(), prefix));
}
