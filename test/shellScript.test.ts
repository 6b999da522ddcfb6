import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { readScript, shellAssignments, shellHeader } from "../components/shellScript";

describe("script files", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "scripts-"));
  const file = (name: string, text: string) => writeFileSync(path.join(dir, name), text);

  it("are read without their notes (the comment lines up to the first empty line)", () => {
    file("a.sh", "# shellcheck shell=sh\n# What it does.\n\n# kept: part of the script\necho hi\n");
    expect(readScript(dir, "a.sh")).toBe("# kept: part of the script\necho hi\n");
  });

  it("must start with notes: a file without them is refused, naming it", () => {
    file("bare.sh", "echo hi\n\necho again\n");
    file("unended.sh", "# notes\necho hi\n");
    expect(() => readScript(dir, "bare.sh")).toThrow(/bare\.sh: a script file starts with its notes/);
    expect(() => readScript(dir, "unended.sh")).toThrow(/unended\.sh: a script file starts with its notes/);
  });
});

describe("script headers", () => {
  it("assign every value quoted, so that the shell reads back exactly the text given", () => {
    const values = { PLAIN: "/var/lib/attic-infra", QUOTES: 'it\'s "x"', SHELL: "$(id) `id` ${x} \\n" };
    const r = spawnSync(
      "/bin/sh",
      ["-c", `${shellAssignments(values)}printf '%s\\n' "$PLAIN" "$QUOTES" "$SHELL"`],
      {
        encoding: "utf8",
      },
    );
    expect(r.stdout).toBe(`${Object.values(values).join("\n")}\n`);
  });

  it("tell shellcheck that a value with $, ` or \\ is literal text", () => {
    expect(shellAssignments({ A: "plain", B: "$x" })).toBe(
      "A='plain'\n# shellcheck disable=SC1003,SC2016 # literal text, expanded nowhere\nB='$x'\n",
    );
  });

  it("refuse a name that is no shell variable", () => {
    expect(() => shellAssignments({ "A-B": "x" })).toThrow(/"A-B" is not a shell variable name/);
  });

  it("start with set -eu and say what the script is", () => {
    expect(shellHeader(["attic-infra: a test."], { A: "1" })).toBe(
      "set -eu\n# attic-infra: a test.\nA='1'\n",
    );
  });
});
