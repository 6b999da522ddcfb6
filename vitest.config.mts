import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Every temporary directory of a test run lives in one directory that teardown removes.
    globalSetup: ["./test/support/globalSetup.ts"],
    // Importing @pulumi/aws takes seconds; synth-based tests share one program run per file.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    // The SSH-based files spend most of their time waiting on connections: two workers on two cores.
    maxWorkers: 2,
    reporters: ["default", "./test/support/summaryReporter.ts"],
  },
});
