/**
 * `npm run restore -- rds` (ci/commands/restore/): the state edit that points a stack's RDS instance
 * at a restored copy, on a recorded-format `pulumi stack export` of the dev example
 * (test/fixtures/restore/dev-stack-export.json, whose URNs, types and parents are checked against
 * the synth here), and the command with recording stand-ins for pulumi and aws.
 * Proven: exactly the documented fields change, nothing else (URN, parent, options, dependents,
 * secrets); the result passes the checks `pulumi stack import` makes; refusals; a retry converges.
 * Not proven: what the Pulumi engine, the bridge and AWS then do at refresh and up (derived from
 * their source in state.ts's header; no Pulumi CLI or AWS here).
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type ExportedResource,
  importProblems,
  pointInstanceAt,
  RAW_STATE_DELTA,
  RDS_INSTANCE,
  RestoreError,
  type StackExport,
} from "../ci/commands/restore/state";
import type { SynthResult } from "../ci/commands/synth/harness";
import { ROOT, synthExample } from "./support/stacks";

const FIXTURE = path.join(ROOT, "test", "fixtures", "restore", "dev-stack-export.json");
const fixture = () => JSON.parse(readFileSync(FIXTURE, "utf8")) as StackExport;
const OLD = "aws-database-postgres-050da83";
const NEW = "aws-database-postgres-050da83-r202611201000";
const NEW_ID = "db-R3STOR3DXK2M4N6P8Q0S2U4W6Y";
const INSTANCE_URN =
  "urn:pulumi:dev::attic-infra::attic:aws:Site$attic:aws:Database$aws:rds/instance:Instance::aws-database-postgres";

const instanceOf = (e: StackExport) => e.deployment.resources!.find((r) => r.type === RDS_INSTANCE)!;

let devSecrets: SynthResult;
beforeAll(async () => {
  devSecrets = await synthExample("dev", true);
});

describe("the recorded export", () => {
  it("has the synth's URNs, types and parents (the program's own resources; default providers aside)", () => {
    const synth = new Map(devSecrets.resources.map((r) => [r.urn, r]));
    const own = fixture().deployment.resources!.filter(
      (r) => !r.urn.includes("::pulumi:providers:random::default_"),
    );
    expect(own.length).toBeGreaterThan(15);
    for (const r of own) {
      const s = synth.get(r.urn);
      expect(s, r.urn).toBeDefined();
      expect(r.type, r.urn).toBe(s!.urn.includes("pulumi:providers:aws") ? "pulumi:providers:aws" : s!.type);
      expect(r.parent ?? null, r.urn).toBe(s!.parent);
      if (s!.custom && s!.type.startsWith("aws:"))
        expect(r.provider, r.urn).toMatch(
          /^urn:pulumi:dev::attic-infra::pulumi:providers:aws::aws::[0-9a-f-]{36}$/,
        );
    }
    expect(instanceOf(fixture()).outputs!.identifier).toBe(
      (devSecrets.outputs.aws as { database: { identifier: string } }).database.identifier,
    );
  });

  it("is importable as it is (the checks of pulumi stack import)", () => {
    expect(importProblems(fixture(), "dev")).toEqual([]);
  });
});

describe("pointInstanceAt", () => {
  it("changes the instance's id, outputs.id, outputs.resourceId and identifier, drops the raw state delta, and nothing else", () => {
    const before = fixture();
    const { exported, urn, previousId, changed } = pointInstanceAt(before, {
      from: OLD,
      to: NEW,
      resourceId: NEW_ID,
    });
    expect({ urn, previousId, changed }).toEqual({
      urn: INSTANCE_URN,
      previousId: "db-7QK2ZB4NRUOXDWTAH5FJ3LMEYI",
      changed: true,
    });
    const r = instanceOf(exported);
    expect([r.id, r.outputs!.id, r.outputs!.resourceId]).toEqual([NEW_ID, NEW_ID, NEW_ID]);
    expect([r.inputs!.identifier, r.outputs!.identifier]).toEqual([NEW, NEW]);
    expect(RAW_STATE_DELTA in r.outputs!).toBe(false);
    // Everything else byte for byte: other resources, the instance's URN, parent, options,
    // dependencies, its secrets (ciphertext objects) and every other output.
    const strip = (e: StackExport) => {
      const copy = structuredClone(e);
      const i = instanceOf(copy) as ExportedResource & {
        inputs: Record<string, unknown>;
        outputs: Record<string, unknown>;
      };
      delete i.id;
      for (const k of ["id", "resourceId", "identifier", RAW_STATE_DELTA]) delete i.outputs[k];
      delete i.inputs.identifier;
      return copy;
    };
    expect(strip(exported)).toEqual(strip(before));
    expect(r).toMatchObject({ protect: true, retainOnDelete: true, urn: INSTANCE_URN });
    expect(r.outputs!.password).toEqual(instanceOf(before).outputs!.password);
    expect(before).toEqual(fixture());
    expect(importProblems(exported, "dev")).toEqual([]);
  });

  it("a second run finds the state already pointing at the restored instance and changes nothing", () => {
    const once = pointInstanceAt(fixture(), { from: OLD, to: NEW, resourceId: NEW_ID }).exported;
    const twice = pointInstanceAt(once, { from: OLD, to: NEW, resourceId: NEW_ID });
    expect(twice.changed).toBe(false);
    expect(twice.exported).toEqual(once);
    // And after a refresh, which writes the raw state delta again.
    const refreshed = structuredClone(once);
    instanceOf(refreshed).outputs![RAW_STATE_DELTA] = { obj: {} };
    expect(pointInstanceAt(refreshed, { from: OLD, to: NEW, resourceId: NEW_ID }).changed).toBe(false);
  });

  it("refuses what would leave the stack worse off, saying why", () => {
    const refused = (e: StackExport, t: Partial<{ from: string; to: string; resourceId: string }>) => () =>
      pointInstanceAt(e, { from: OLD, to: NEW, resourceId: NEW_ID, ...t });
    const pending = fixture();
    pending.deployment.pending_operations = [{ resource: instanceOf(pending), type: "updating" }];
    expect(refused(pending, {})).toThrow(/1 pending operation\(s\) from an interrupted update/);
    expect(refused(fixture(), { from: "someone-elses-db" })).toThrow(/has no RDS instance someone-elses-db/);
    expect(refused(fixture(), { resourceId: "aws-database-postgres" })).toThrow(/is not an RDS resource id/);
    expect(refused(fixture(), { to: OLD })).toThrow(/must have an identifier of its own/);
    expect(refused(fixture(), { to: "bad--name" })).toThrow(/is not an RDS instance identifier/);
    expect(refused({ ...fixture(), version: 2 }, {})).toThrow(/version 3 or 4/);
    for (const f of [refused(pending, {}), refused(fixture(), { to: OLD })]) expect(f).toThrow(RestoreError);
  });
});

describe("importProblems (what pulumi stack import refuses)", () => {
  it("catches a dependency, parent or provider that is not earlier, another stack, a duplicate, a bad magic cookie", () => {
    const reordered = fixture();
    const rs = reordered.deployment.resources!;
    const i = rs.findIndex((r) => r.type === RDS_INSTANCE);
    rs.push(...rs.splice(i, 1));
    expect(importProblems(reordered, "dev").join("\n")).toMatch(
      /TaskDefinition::aws-ecs-gc: dependency .*aws-database-postgres is not earlier/,
    );
    const orphan = fixture();
    orphan.deployment.resources!.splice(3, 1);
    expect(importProblems(orphan, "dev").join("\n")).toMatch(
      /parent urn:pulumi:dev::attic-infra::attic:aws:Site::aws is not earlier/,
    );
    expect(importProblems(fixture(), "prod")[0]).toMatch(/belongs to stack dev, not prod/);
    const twice = fixture();
    twice.deployment.resources!.push(structuredClone(instanceOf(twice)));
    expect(importProblems(twice, "dev")).toContain(`${INSTANCE_URN}: appears twice`);
    const magic = fixture();
    magic.deployment.manifest!.version = "v3.271.0";
    expect(importProblems(magic, "dev")).toEqual(["manifest: magic cookie mismatch"]);
  });
});

describe("npm run restore -- rds (stand-ins for pulumi and aws)", () => {
  let dir: string;
  const log = () => readFileSync(path.join(dir, "calls.log"), "utf8").split("\n").filter(Boolean);
  const standIn = (name: string, body: string) => {
    writeFileSync(
      path.join(dir, "bin", name),
      `#!/bin/sh\nprintf '%s\\n' "${name} $*" >> "$STANDIN_DIR/calls.log"\n${body}\n`,
    );
    chmodSync(path.join(dir, "bin", name), 0o755);
  };
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "restore-"));
    spawnSync("mkdir", ["-p", path.join(dir, "bin")]);
    writeFileSync(path.join(dir, "calls.log"), "");
    writeFileSync(path.join(dir, "outputs.json"), JSON.stringify(devSecrets.outputs));
    writeFileSync(path.join(dir, "state.json"), readFileSync(FIXTURE));
    writeFileSync(path.join(dir, "instance.txt"), `${NEW_ID}\tavailable\n`);
    // pulumi: outputs from a file; export/import copy the stack's state file, as the backend would.
    standIn(
      "pulumi",
      `case "$1 $2" in
  "stack output") cat "$STANDIN_DIR/outputs.json" ;;
  "stack export") cp "$STANDIN_DIR/state.json" "$6" ;;
  "stack import") cp "$6" "$STANDIN_DIR/state.json" ;;
  *) exit 3 ;;
esac`,
    );
    standIn("aws", `cat "$STANDIN_DIR/instance.txt"`);
  });
  const restore = (args: string[]) =>
    spawnSync(
      process.execPath,
      [
        path.join(ROOT, "node_modules/tsx/dist/cli.mjs"),
        path.join(ROOT, "ci/commands/restore/cli.ts"),
        ...args,
      ],
      {
        cwd: dir,
        encoding: "utf8",
        env: { PATH: `${path.join(dir, "bin")}:/usr/bin:/bin`, STANDIN_DIR: dir },
      },
    );
  const ARGS = ["rds", "--stack", "dev", "--restored", NEW, "--out", "work"];

  it("exports, edits and imports the state, names from the outputs and AWS; a second run imports nothing", () => {
    const r = restore(ARGS);
    expect(r.status, r.stderr).toBe(0);
    expect(log()).toEqual([
      "pulumi stack output --json --show-secrets --stack dev",
      `aws rds describe-db-instances --db-instance-identifier ${NEW} --query DBInstances[0].[DbiResourceId,DBInstanceStatus] --output text`,
      "pulumi stack export --stack dev --file work/before.json",
      "pulumi stack import --stack dev --file work/after.json",
    ]);
    const state = JSON.parse(readFileSync(path.join(dir, "state.json"), "utf8")) as StackExport;
    expect(state).toEqual(pointInstanceAt(fixture(), { from: OLD, to: NEW, resourceId: NEW_ID }).exported);
    expect(readFileSync(path.join(dir, "work/before.json"), "utf8")).toBe(readFileSync(FIXTURE, "utf8"));
    expect(statSync(path.join(dir, "work/after.json")).mode & 0o777).toBe(0o600);
    expect(r.stdout).toContain(`id db-7QK2ZB4NRUOXDWTAH5FJ3LMEYI (${OLD}) → ${NEW_ID} (${NEW})`);
    expect(r.stdout).toContain(`pulumi refresh --stack dev --target '${INSTANCE_URN}'`);
    expect(r.stdout).toContain("to undo: pulumi stack import --stack dev --file work/before.json");

    writeFileSync(path.join(dir, "calls.log"), "");
    const again = restore([...ARGS.slice(0, -1), "work2"]);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toContain("already has");
    expect(log().some((c) => c.startsWith("pulumi stack import"))).toBe(false);
  });

  it("--dry-run writes both files and imports nothing", () => {
    const r = restore([...ARGS, "--dry-run"]);
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(path.join(dir, "work/after.json"))).toBe(true);
    expect(log().some((c) => c.startsWith("pulumi stack import"))).toBe(false);
    expect(readFileSync(path.join(dir, "state.json"), "utf8")).toBe(readFileSync(FIXTURE, "utf8"));
  });

  it("refuses, touching no state, a restored instance that is not available yet, or a stack without its own database", () => {
    writeFileSync(path.join(dir, "instance.txt"), `${NEW_ID}\tcreating\n`);
    const creating = restore(ARGS);
    expect(creating.status).toBe(2);
    expect(creating.stderr).toContain(
      `restore: the restored instance ${NEW} is creating, not available: wait (aws rds wait db-instance-available`,
    );
    expect(log().some((c) => c.startsWith("pulumi stack export"))).toBe(false);

    const outputs = structuredClone(devSecrets.outputs) as { aws: { database?: unknown } };
    delete outputs.aws.database;
    writeFileSync(path.join(dir, "outputs.json"), JSON.stringify(outputs));
    const existing = restore(ARGS);
    expect(existing.status).toBe(2);
    expect(existing.stderr).toContain("restore: stack dev uses database.existing");

    const usage = restore(["rds", "--stack", "dev"]);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain("--restored <identifier of the restored instance> is required");
    expect(readFileSync(path.join(dir, "state.json"), "utf8")).toBe(readFileSync(FIXTURE, "utf8"));
  });

  it("package.json's restore script runs this command", () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.restore).toBe("tsx ci/commands/restore/cli.ts");
  });
});
