import { execFileSync } from "node:child_process";

/**
 * Whether a system tool is on PATH. Tests that need one use `describe.skipIf(!haveTool(..))`; under
 * CI=true a missing tool is an error naming it (CI installs every tool in .ci/run), elsewhere the
 * test is skipped with a visible warning.
 */
export function haveTool(tool: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    return true;
  } catch {
    if (process.env.CI === "true") {
      throw new Error(`${tool} is required for this test under CI=true but is not installed (see .ci/run)`);
    }
    console.warn(`WARNING: ${tool} is not installed: skipping the tests that need it`);
    return false;
  }
}
