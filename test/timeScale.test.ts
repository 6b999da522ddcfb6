/** The tests' one time scale (test/support/timeScale.ts): what it multiplies, and how it waits. */
import { describe, expect, it } from "vitest";
import { parseTimeScale, scaled, TIME_SCALE, waitFor } from "./support/timeScale";

describe("the time scale", () => {
  it("ATTIC_TEST_TIME_SCALE: unset or empty is 1, a positive number is taken, anything else is refused with a sentence", () => {
    expect(parseTimeScale(undefined)).toBe(1);
    expect(parseTimeScale(" ")).toBe(1);
    expect(parseTimeScale("2.5")).toBe(2.5);
    for (const bad of ["abc", "0", "-1"])
      expect(() => parseTimeScale(bad)).toThrow(
        `ATTIC_TEST_TIME_SCALE=${bad}: not a positive number; it multiplies every wait and timeout of the tests`,
      );
  });

  it("scaled: milliseconds for Node, whole seconds (rounded up) for scripts", () => {
    expect(scaled(1.5)).toEqual({ seconds: Math.ceil(1.5 * TIME_SCALE), ms: Math.ceil(1500 * TIME_SCALE) });
  });

  it("waitFor resolves once the condition holds, and otherwise fails naming what it waited for", async () => {
    let n = 0;
    await waitFor("the third look", () => ++n >= 3, 10);
    expect(n).toBe(3);
    await expect(waitFor("something that never happens", () => false, 0.05)).rejects.toThrow(
      /^timed out after \d+ s waiting for something that never happens \(ATTIC_TEST_TIME_SCALE=/,
    );
  });
});
