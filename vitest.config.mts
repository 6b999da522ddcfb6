import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Every temporary directory of a test run lives in one directory that teardown removes.
    globalSetup: ["./test/support/globalSetup.ts"],
    // testTimeout and hookTimeout: set per file on the time scale (ATTIC_TEST_TIME_SCALE raises them).
    setupFiles: ["./test/support/timeouts.ts"],
    pool: "forks",
    // The SSH scenario files spend part of their time waiting (timers, connections): a third worker
    // overlaps that with the CPU-bound synth files (measured on 2 cores: 62 s against 65-73 s with two).
    maxWorkers: 3,
    reporters: ["default", "./test/support/summaryReporter.ts"],
  },
});
