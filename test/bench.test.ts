/**
 * `npm run bench` (ci/commands/bench): the arithmetic (medians, ratios to the baseline of the same
 * run), its table and comparison, and the command against a stand-in checkout (--root) whose synth
 * and test scripts record how they were run — the real figures take minutes and are not asserted
 * anywhere: tests assert no time.
 */
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../ci/commands/bench/cli";
import {
  type BenchReport,
  formatComparison,
  formatReport,
  median,
  summarize,
} from "../ci/commands/bench/report";
import { ROOT } from "./support/stacks";

describe("the arithmetic", () => {
  it("median: the middle value, or the mean of the two middle ones", () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow("median of no values");
  });

  it("every figure's median is divided by the baseline's median of the same run, wall and CPU alike", () => {
    const figures = summarize({ name: "base", wallMs: [100, 300, 200], cpuMs: [50, 50, 60] }, [
      { name: "synth dev", wallMs: [900, 1100, 1000], cpuMs: [400, 500, 450] },
    ]);
    expect(figures.map((f) => [f.name, f.wallMedianMs, f.wallRatio, f.cpuMedianMs, f.cpuRatio])).toEqual([
      ["base", 200, 1, 50, 1],
      ["synth dev", 1000, 5, 450, 9],
    ]);
  });

  it("without CPU samples (not Linux) the CPU columns are left out, the wall ones stay", () => {
    const [, f] = summarize({ name: "base", wallMs: [100], cpuMs: [] }, [
      { name: "x", wallMs: [250], cpuMs: [] },
    ]);
    expect(f).toMatchObject({ wallRatio: 2.5 });
    expect(f!.cpuRatio).toBeUndefined();
  });
});

const report = (commit: string, ratio: number): BenchReport => ({
  commit,
  node: "v24.0.0",
  cpus: 2,
  load: 0.5,
  runs: 3,
  figures: summarize({ name: "baseline", wallMs: [1000], cpuMs: [1000] }, [
    { name: "synth dev", wallMs: [1000 * ratio], cpuMs: [1000 * ratio] },
  ]),
});

describe("what it prints", () => {
  it("a table: one row per figure, medians and ratios, and what the machine was doing", () => {
    const text = formatReport(report("abc1234", 4.5));
    expect(text).toContain("node v24.0.0, 2 CPUs, load 0.50 at the start, commit abc1234");
    expect(text.split("\n").find((l) => l.startsWith("synth dev"))).toMatch(
      /^synth dev\s+4,500\s+4\.50\s+4,500\s+4\.50$/,
    );
  });

  it("a comparison with an earlier report: each figure's ratio before, now, and the change", () => {
    const text = formatComparison(report("before1", 4), report("after22", 4.6));
    expect(text).toContain("before: before1 (3 runs, load 0.50)");
    expect(text.split("\n").find((l) => l.startsWith("synth dev"))).toMatch(
      /^synth dev\s+4\.00\s+4\.60\s+\+15 %\s+4\.00\s+4\.60\s+\+15 %$/,
    );
  });
});

describe("npm run bench", () => {
  /** A checkout whose scripts record their arguments and TMPDIR; the SDKs are this repository's. */
  const standIn = (scripts: Record<string, string>) => {
    const root = mkdtempSync(path.join(tmpdir(), "bench-root-"));
    symlinkSync(path.join(ROOT, "node_modules"), path.join(root, "node_modules"));
    writeFileSync(
      path.join(root, "record.js"),
      `require("fs").appendFileSync(${JSON.stringify(path.join(root, "runs.log"))}, JSON.stringify({ args: process.argv.slice(2), tmp: process.env.TMPDIR }) + "\\n");\n`,
    );
    writeFileSync(path.join(root, "package.json"), JSON.stringify({ name: "stand-in", scripts }));
    return root;
  };
  const run = async (argv: string[]) => {
    let out = "";
    let err = "";
    const code = await main(
      argv,
      (s) => (out += s),
      (s) => (err += s),
    );
    return { code, out, err };
  };

  it("runs the baseline and each chosen figure, as npm runs the scripts, each in a fresh TMPDIR; --json reports medians and ratios", async () => {
    const root = standIn({ synth: "node record.js", test: "node record.js" });
    const r = await run(["--root", root, "--runs", "1", "--figures", "synth:vps,suite", "--json"]);
    expect(r.code, r.err).toBe(0);
    const json = JSON.parse(r.out) as BenchReport;
    expect(json.figures.map((f) => [f.name, f.wallMs.length, f.wallRatio > 0])).toEqual([
      ["baseline (node loads the SDKs)", 1, true],
      ["synth vps", 1, true],
      ["npm test", 1, true],
    ]);
    expect(json.figures[0]!.wallRatio).toBe(1);
    const runs = readFileSync(path.join(root, "runs.log"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { args: string[]; tmp: string });
    expect(runs.map((x) => x.args)).toEqual([
      ["--stack", "vps", "--out", path.join(runs[0]!.tmp, "out")],
      [],
    ]);
    expect(runs[0]!.tmp).not.toBe(runs[1]!.tmp);
  });

  it("a figure whose command fails stops the bench with exit 1 and its output", async () => {
    const root = standIn({ test: "echo 'FAIL test/x.test.ts' && exit 3" });
    const r = await run(["--root", root, "--runs", "1", "--figures", "suite"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("npm test failed (exit 3); its last output:\nFAIL test/x.test.ts");
  });

  it("bad usage exits 2 with a sentence and the usage", async () => {
    const r = await run(["--figures", "synth:mars"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("--figures: synth:mars is not one of preview, synth, synth:dev");
    expect((await run(["--runs", "0"])).err).toContain("--runs 0: not a whole number ≥ 1");
  });
});
