/**
 * The office site as the program builds it (offline synth of the checked-in office example): a
 * configuration of the NixOS host deployer, whose scenarios over real SSH are in
 * nixosHost.{deploy,failures,interrupt}.test.ts. Here: the resources and their URNs,
 * what the deploy is given, the cross-site ordering, the config checks, and shellcheck.
 */
import { spawnSync } from "node:child_process";
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { asRoot } from "../components/nixosHost/scripts";
import { listenFacts } from "../components/office/site";
import { loadConfig } from "../config/load";
import { backupScript, restoreCommands } from "../nixos/office";
import { ENVIRONMENT_FILE, environmentFile, SQLITE_DATABASE } from "../nixos/shared";
import { exampleBlocks, exampleConfig, ROOT, synthExample, toConfigMap } from "./support/stacks";
import { haveTool } from "./support/tools";
import { synth } from "../ci/commands/synth/harness";

/**
 * The office example's URNs before the deployer component (#10), captured from that code (main at
 * f66aed2) with the synth engine, which names URNs as the Pulumi engine does. The switch's are its
 * own site's business (#11 reshaped them) and left out.
 */
const URNS_BEFORE_10 = [
  "urn:pulumi:office::attic-infra::pulumi:pulumi:Stack::attic-infra-office",
  "urn:pulumi:office::attic-infra::attic:office:Site::office",
  "urn:pulumi:office::attic-infra::tls:index/privateKey:PrivateKey::token-signing-key",
  "urn:pulumi:office::attic-infra::attic:office:Site$attic:attic:Server::office-attic",
  "urn:pulumi:office::attic-infra::attic:office:Site$command:remote:Command::office-host",
  "urn:pulumi:office::attic-infra::attic:office:Site$command:remote:Command::office-module",
  "urn:pulumi:office::attic-infra::attic:office:Site$command:remote:Command::office-env",
  "urn:pulumi:office::attic-infra::attic:office:Site$command:remote:Command::office-switch",
  "urn:pulumi:office::attic-infra::attic:office:Site$command:remote:Command::office-confirm",
  "urn:pulumi:office::attic-infra::attic:office:Site$attic:attic:Server$pulumi-nodejs:dynamic/attic-infra:AtticCache::office-attic-cache-n3x",
];
/**
 * The step resources the one deploy resource replaced. They had no `delete` (remote.Command's
 * delete runs nothing without one), so dropping them from the program runs nothing on the host.
 */
const RETIRED_STEPS = ["office-module", "office-env", "office-switch", "office-confirm"];

describe("the office site (synth)", () => {
  it("keeps every URN of the office example, by name or by alias, except the retired step resources", async () => {
    const r = await synthExample("office");
    const known = new Set(r.resources.flatMap((e) => [e.urn, ...e.options.aliases]));
    const missing = URNS_BEFORE_10.filter((u) => !known.has(u));
    expect(missing.map((u) => u.slice(u.lastIndexOf("::") + 2))).toEqual(RETIRED_STEPS);
    // office-host's delete is the teardown: it must be the same resource, not a new one.
    const host = r.resources.find((e) => e.name === "office-host")!;
    expect(host.options.aliases).toContain(
      "urn:pulumi:office::attic-infra::attic:office:Site$command:remote:Command::office-host",
    );
    expect(host.type).toBe("command:remote:Command");
  });

  it("is the holder (teardown on delete, never replaced) and one deploy resource, replaced when the module or environment file changes", async () => {
    const r = await synthExample("office", true);
    const office = loadConfig(exampleConfig("office")).config.office!;
    const host = r.resources.find((e) => e.name === "office-host")!;
    const deploy = r.resources.find((e) => e.name === "office-deploy")!;
    expect(host.inputs).not.toHaveProperty("triggers");
    expect(host.inputs.delete).toBe(asRoot(r.files["office/scripts/teardown.sh"]!));
    expect(host.inputs.connection).toMatchObject({
      host: "10.0.0.10",
      port: 22,
      user: "root",
      hostKey: office.hostKey,
    });
    expect(deploy.type).toBe("command:local:Command");
    expect(deploy.inputs).not.toHaveProperty("delete");
    expect(deploy.inputs.triggers).toEqual([expect.stringMatching(/^[0-9a-f]{32}$/)]);
    expect(deploy.inputs.create).toBe(r.files["office/scripts/driver.sh"]);
    expect(deploy.inputs.environment).toMatchObject({
      NIXOS_HOST: "10.0.0.10",
      NIXOS_PORT: "22",
      NIXOS_HOST_KEY: office.hostKey,
    });
    expect(String(deploy.inputs.stdin)).toMatch(
      /^ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64=[A-Za-z0-9+/]+=*\n$/,
    );
    // The caches are created through the API once the deploy is confirmed.
    expect(r.resources.find((e) => e.name === "office-attic-cache-n3x")!.options.dependsOn).toContain(
      deploy.urn,
    );
    const hidden = await synthExample("office");
    const shown = hidden.resources.find((e) => e.name === "office-deploy")!;
    expect(shown.inputs.stdin).toBe("[secret]");
    expect(shown.inputs.environment).toBe("[secret]");
    expect(String(shown.inputs.create)).not.toContain("ATTIC_SERVER_TOKEN");
  });

  it.skipIf(!haveTool("ssh-agent"))(
    "a private key ssh-add refuses stops the deploy before it connects, naming attic-infra:office.privateKey",
    async () => {
      const r = await synthExample("office");
      const tmp = mkdtempSync(path.join(tmpdir(), "driver-"));
      const run = spawnSync("/bin/sh", ["-c", r.files["office/scripts/driver.sh"]!], {
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          TMPDIR: tmp,
          NIXOS_HOST: "127.0.0.1",
          NIXOS_PORT: "1",
          NIXOS_USER: "root",
          NIXOS_HOST_KEY: "",
          NIXOS_PRIVATE_KEY:
            "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----",
        },
        encoding: "utf8",
      });
      expect(run.status).toBe(1);
      expect(run.stderr.trim()).toBe(
        "attic-infra: the key in attic-infra:office.privateKey could not be loaded (ssh-add); give an unencrypted OpenSSH or PEM private key",
      );
      expect(readdirSync(tmp)).toEqual([]);
    },
  );

  it("the deploy is given atticd's units, environment file, database, health URL and the configured times", async () => {
    const { files } = await synthExample("office");
    const office = loadConfig(exampleConfig("office")).config.office!;
    const deploy = files["office/scripts/deploy.sh"]!;
    expect(deploy).toContain(`HEALTH_URL='${listenFacts(office.listen).healthUrl}'`);
    expect(deploy).toContain(`ENV_FILE='${ENVIRONMENT_FILE}'`);
    expect(deploy).toContain(`DB='${SQLITE_DATABASE}'`);
    expect(deploy).toContain("UNITS='atticd.service'");
    expect(deploy).toContain("WINDOW_SECONDS='180'");
    expect(deploy).toContain("BUILD_SECONDS='1800'");
    expect(deploy).toContain("ACTIVATION_SECONDS='90'");
    expect(deploy).toContain("FLAKE=''");
    expect(files["office/atticd.env"]).toBe("[secret]");
  });

  it("with the switch in the same stack, the office deploy and holder depend on the switch's confirmed apply (so destroy tears the host down first)", async () => {
    const r = await synthExample("office");
    // The switch's apply resource ends with its confirm (over a new connection).
    const confirm = r.resources.find((e) => e.name === "mikrotik-apply")!;
    for (const name of ["office-host", "office-deploy"]) {
      expect(r.resources.find((e) => e.name === name)!.options.dependsOn, name).toContain(confirm.urn);
    }
  });

  // That the build then uses the flake copy: nixosHost.deploy.test.ts, "NixOS flake host deploy".
  it("flake hosts: the deploy and teardown are given the flake, the module lives in the flake", async () => {
    const blocks = exampleBlocks("office");
    (blocks["attic-infra:office"] as Record<string, unknown>).flake = "/etc/nixos#attic-cache";
    const { files, outputs } = await synth({ stack: "office", config: toConfigMap(blocks) });
    expect(files["office/scripts/deploy.sh"]).toContain("FLAKE='/etc/nixos#attic-cache'");
    expect(files["office/scripts/teardown.sh"]).toContain("FLAKE='/etc/nixos#attic-cache'");
    expect((outputs.office as { modulePath: string }).modulePath).toBe("/etc/nixos/attic-infra/atticd.nix");
  });

  it("the environment file carries the private key for atticd-atticadm, base64 of the PEM", () => {
    const office = loadConfig(exampleConfig("office")).config.office!;
    expect(environmentFile("PEM", office.storage)).toBe(
      `ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64=${Buffer.from("PEM").toString("base64")}\n`,
    );
  });
});

describe("office config", () => {
  const withOffice = (patch: Record<string, unknown>) => {
    const blocks = exampleBlocks("office");
    Object.assign(blocks["attic-infra:office"] as Record<string, unknown>, patch);
    return toConfigMap(blocks);
  };

  it("refuses a stack without hostKey and without insecureIgnoreHostKey before deploying", () => {
    const blocks = exampleBlocks("office");
    delete (blocks["attic-infra:office"] as Record<string, unknown>).hostKey;
    expect(() => loadConfig(toConfigMap(blocks))).toThrow(/attic-infra:office\.hostKey: is required/);
  });

  it("refuses S3 storage without keys: atticd on the host has no other credential source", () => {
    const config = withOffice({ storage: { s3: { region: "eu-central-003", bucket: "attic" } } });
    expect(() => loadConfig(config)).toThrow(
      /attic-infra:office\.storage\.s3\.accessKeyId: is required for S3 storage on the office host .*pulumi config set --secret --path office\.storage\.s3\.accessKeyId/,
    );
    expect(() => loadConfig(config)).toThrow(/attic-infra:office\.storage\.s3\.secretAccessKey: is required/);
  });

  it("refuses a rollback window shorter than the deploy's budget, with the numbers", () => {
    expect(() => loadConfig(withOffice({ rollbackTimeoutSeconds: 150 }))).toThrow(
      "attic-infra:office.rollbackTimeoutSeconds: 150 s is shorter than the deploy's budget of 180 s (activation 90 + health check 30 + confirm dialling 30 + margin 30); raise it, or lower activationTimeoutSeconds / healthTimeoutSeconds",
    );
    expect(() =>
      loadConfig(withOffice({ rollbackTimeoutSeconds: 150, activationTimeoutSeconds: 60 })),
    ).not.toThrow();
  });
});

describe.skipIf(!haveTool("sqlite3"))("office restore runbook", () => {
  it("is the generated restore in both docs", () => {
    const block = restoreCommands("/var/backup/atticd/server-<stamp>.db")
      .trimEnd()
      .split("\n")
      .map((l) => `    ${l}`)
      .join("\n");
    for (const doc of ["docs/office.md", "docs/runbooks.md"]) {
      expect(readFileSync(path.join(ROOT, doc), "utf8"), doc).toContain(block);
    }
  });

  it.skipIf(process.getuid?.() !== 0)(
    "restores the backup without the replaced database's -wal/-shm, owned by the state directory's owner",
    () => {
      const dir = mkdtempSync(path.join(tmpdir(), "restore-"));
      const state = path.join(dir, "private/atticd");
      const bin = path.join(dir, "bin");
      mkdirSync(state, { recursive: true });
      mkdirSync(bin);
      writeFileSync(
        path.join(bin, "systemctl"),
        `#!/bin/sh
echo "systemctl $*" >> ${dir}/calls
`,
        { mode: 0o755 },
      );
      chownSync(state, 61234, 61234); // atticd's dynamic user
      const backup = path.join(dir, "server-20260101T000000Z.db");
      spawnSync("sqlite3", [backup, "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('backup')"]);
      writeFileSync(path.join(state, "server.db"), "broken");
      writeFileSync(path.join(state, "server.db-wal"), "stale");
      writeFileSync(path.join(state, "server.db-shm"), "stale");
      const r = spawnSync("sh", ["-eu", "-c", restoreCommands(backup, state)], {
        env: { PATH: `${bin}:${process.env.PATH}` },
        encoding: "utf8",
      });
      expect(r.status, r.stderr).toBe(0);
      const db = path.join(state, "server.db");
      expect(spawnSync("sqlite3", [db, "SELECT v FROM t"], { encoding: "utf8" }).stdout.trim()).toBe(
        "backup",
      );
      expect(existsSync(`${db}-wal`) || existsSync(`${db}-shm`)).toBe(false);
      expect(statSync(db)).toMatchObject({ uid: 61234, gid: 61234 });
      expect(statSync(db).mode & 0o777).toBe(0o600);
      expect(readFileSync(path.join(dir, "calls"), "utf8")).toBe(
        "systemctl stop atticd.service\nsystemctl start atticd.service\n",
      );
    },
  );
});

describe.skipIf(!haveTool("shellcheck"))("shellcheck", () => {
  it("passes every generated shell script: driver, deploy, confirm, teardown, rollback and backup", async () => {
    const { files } = await synthExample("office", true);
    const scripts = Object.entries(files).filter(([f]) => f.endsWith(".sh"));
    expect(scripts.map(([f]) => path.basename(f)).sort()).toEqual(
      expect.arrayContaining(["confirm.sh", "deploy.sh", "driver.sh", "rollback.sh", "teardown.sh"]),
    );
    const extra: Array<[string, string]> = [
      ["backup.sh", `#!/bin/sh\n${backupScript({ dir: "/var/backup/atticd", keep: 14 })}`],
    ];
    const dir = mkdtempSync(path.join(tmpdir(), "shellcheck-"));
    for (const [name, text] of [...scripts, ...extra]) {
      const file = path.join(dir, path.basename(name));
      writeFileSync(file, text);
      const r = spawnSync("shellcheck", ["--shell=sh", "--severity=info", file], { encoding: "utf8" });
      expect(r.stdout, name).toBe("");
      expect(r.status, name).toBe(0);
    }
  });
});
