/**
 * The one time scale of the test suite: every wait, deadline and timeout a test sets (vitest's
 * testTimeout and hookTimeout, SSH commands, the deploy budget given to the scripts under test,
 * polling for a condition) is a number of seconds on an ordinary machine, multiplied here by
 * ATTIC_TEST_TIME_SCALE (default 1). On a slow or loaded machine, raise it (`ATTIC_TEST_TIME_SCALE=3
 * npm test`): waits get longer, no assertion changes. Tests never assert how long something took;
 * `npm run bench` measures that.
 *
 *   scaled(60).ms        a Node/vitest timeout: 60 s at scale 1
 *   scaled(20).seconds   a deadline for a script or `timeout` (whole seconds, rounded up)
 *   await waitFor("the activation to start", () => host.activating(), 20)
 */

export const TIME_SCALE_VARIABLE = "ATTIC_TEST_TIME_SCALE";

/** The scale a value of ATTIC_TEST_TIME_SCALE sets (unset or empty: 1). */
export function parseTimeScale(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === "") return 1;
  const scale = Number(raw);
  if (!Number.isFinite(scale) || scale <= 0)
    throw new Error(
      `${TIME_SCALE_VARIABLE}=${raw}: not a positive number; it multiplies every wait and timeout of the tests (e.g. 3 on a slow or loaded machine)`,
    );
  return scale;
}

/** The factor every wait of the tests is multiplied by. */
export const TIME_SCALE = parseTimeScale(process.env[TIME_SCALE_VARIABLE]);

/** `seconds` of waiting on this machine: `.ms` for Node and vitest, `.seconds` (whole, rounded up) for scripts. */
export function scaled(seconds: number): { seconds: number; ms: number } {
  return { seconds: Math.ceil(seconds * TIME_SCALE), ms: Math.ceil(seconds * TIME_SCALE * 1000) };
}

/**
 * Resolves once `condition()` holds (checked every 25 ms); rejects naming `what` when it still does
 * not after `withinSeconds` (scaled).
 */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  withinSeconds: number,
): Promise<void> {
  const deadline = Date.now() + scaled(withinSeconds).ms;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${scaled(withinSeconds).seconds} s waiting for ${what} (${TIME_SCALE_VARIABLE}=${TIME_SCALE})`,
      );
    await new Promise((r) => setTimeout(r, 25));
  }
}
