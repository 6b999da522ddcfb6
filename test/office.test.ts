/**
 * The office deployment's remote scripts, run for real over SSH (OpenSSH server on 127.0.0.1, the
 * real ssh client) against a fake NixOS host: recording stand-ins for nixos-rebuild, nix-env,
 * systemd-run and systemctl, real coreutils/grep/curl, and an HTTP health endpoint that the test
 * can make fail.
 *
 * Proven: the scripts' logic and transport (one exec request per step, stdin piped, what each
 * step leaves on the host), the dead-man sequence and every rollback path, and that the secret
 * travels only on stdin. Not proven: @pulumi/command's provider itself (its binary is not here:
 * we run the same `create` text and `stdin` with OpenSSH), and a real NixOS switch.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { environmentFile, listenFacts } from "../components/office/site";
import {
  confirmScript,
  defaultPaths,
  deployId,
  preflightScript,
  rollbackScript,
  switchScript,
  teardownScript,
  uploadEnvScript,
  uploadModuleScript,
} from "../components/office/scripts";
import { sha256 } from "../components/text";
import { FakeNixosHost } from "./support/fakeNixosHost";
import { TestSshd } from "./support/sshd";
import { haveTool } from "./support/tools";
import { exampleConfig, synthExample } from "./support/stacks";
import { loadConfig } from "../config/load";
import { backupScript } from "../nixos/atticdModule";
import { synth } from "./synth/harness";

const SECRET = "SYNTHSECRET-office-signing-key-0f1e2d3c";
const ENV = `ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64=${Buffer.from(SECRET).toString("base64")}\n`;
const ROLLBACK_SECONDS = 12;

describe.skipIf(!(haveTool("/usr/sbin/sshd") && haveTool("ssh") && haveTool("curl")))(
  "office deploy over SSH",
  () => {
    let host: FakeNixosHost;
    let sshd: TestSshd;
    // atticd's health endpoint, in its own process: the ssh runs below block this one. It answers
    // 503 while the file UNHEALTHY exists.
    const unhealthyFlag = path.join(mkdtempSync(path.join(tmpdir(), "health-")), "UNHEALTHY");
    let health: ChildProcess;
    let healthUrl: string;
    const setHealthy = (on: boolean) =>
      on ? rmSync(unhealthyFlag, { force: true }) : writeFileSync(unhealthyFlag, "");
    const outputs: string[] = [];

    beforeAll(async () => {
      health = spawn(
        process.execPath,
        [
          "-e",
          `const fs = require("fs");
           const s = require("http").createServer((q, r) => { const ok = !fs.existsSync(${JSON.stringify(unhealthyFlag)}); r.writeHead(ok ? 200 : 503); r.end(ok ? "attic" : "down"); });
           s.listen(0, "127.0.0.1", () => console.log(s.address().port));`,
        ],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      const port = await new Promise<string>((resolve) =>
        health.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim())),
      );
      healthUrl = `http://127.0.0.1:${port}/`;
    });
    afterAll(() => {
      health.kill();
      sshd?.stop();
    });

    beforeEach(async () => {
      sshd?.stop();
      host = new FakeNixosHost();
      sshd = await TestSshd.start({ binDir: host.binDir, env: { TEST_ROOT: host.root } });
      setHealthy(true);
    });

    const run = (script: string, stdin = "") => {
      const r = sshd.run(script, stdin);
      outputs.push(r.stdout, r.stderr);
      return r;
    };
    const scripts = (module: string, env = ENV) => {
      const moduleSha256 = sha256(module);
      const envSha256 = sha256(env);
      const id = deployId(moduleSha256, envSha256);
      return {
        id,
        upload: uploadModuleScript(host.paths),
        env: uploadEnvScript(host.paths),
        switch: switchScript({
          paths: host.paths,
          stack: "test",
          moduleSha256,
          envSha256,
          rollbackTimeoutSeconds: ROLLBACK_SECONDS,
          buildTimeoutSeconds: 60,
          healthUrl,
        }),
        confirm: confirmScript({ paths: host.paths, deployId: id, healthUrl }),
      };
    };
    /** Steps a–c of a deploy; returns the switch's result. */
    const deployWithoutConfirm = (module: string, env = ENV) => {
      const s = scripts(module, env);
      expect(run(preflightScript(host.paths)).status).toBe(0);
      expect(run(s.upload, module).status).toBe(0);
      expect(run(s.env, env).status).toBe(0);
      return { s, result: run(s.switch) };
    };
    /** A complete deploy (a–d) that must succeed: the starting point of the failure tests. */
    const deployAndConfirm = (module: string) => {
      const { s, result } = deployWithoutConfirm(module);
      expect(result.status, result.stderr).toBe(0);
      expect(run(s.confirm).status).toBe(0);
    };
    /** After a failed deploy over a confirmed MODULE_V1: the host is exactly as it was. */
    const expectHostAsBefore = () => {
      expect(host.generation()).toBe(2);
      expect(host.file("module")).toBe(MODULE_V1);
      expect(host.armedTimer()).toBeUndefined();
      expect(host.file("pending")).toBeUndefined();
    };
    const MODULE_V1 = "{ ... }: { services.atticd.enable = true; } # v1\n";
    const MODULE_V2 = "{ ... }: { services.atticd.enable = true; } # v2\n";

    it("first deploy: stage, build, arm, switch, health, then confirm from a new connection", () => {
      const { s, result } = deployWithoutConfirm(MODULE_V1);
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toContain("armed: the host rolls back to generation 1");
      expect(host.file("module")).toBe(MODULE_V1);
      expect(host.file("env")).toBe(ENV);
      expect(statSync(path.join(host.paths.stateDir, "atticd.env")).mode & 0o777).toBe(0o600);
      expect(host.generation()).toBe(2);
      expect(host.calls()).toEqual([
        "nixos-rebuild build",
        "systemctl stop attic-infra-rollback.timer",
        "systemctl reset-failed attic-infra-rollback.timer attic-infra-rollback.service",
        `systemd-run --on-active=${ROLLBACK_SECONDS} --unit=attic-infra-rollback --description=attic-infra: roll back an unconfirmed deploy /bin/sh ${host.paths.stateDir}/rollback.sh`,
        "nixos-rebuild switch",
        "switch-to-configuration generation=2 switch",
      ]);
      expect(host.armedTimer()).toEqual({
        "on-active": String(ROLLBACK_SECONDS),
        command: `/bin/sh ${host.paths.stateDir}/rollback.sh`,
      });

      const confirm = run(s.confirm);
      expect(confirm.status, confirm.stderr).toBe(0);
      expect(confirm.stdout).toContain("rollback disarmed");
      expect(host.armedTimer()).toBeUndefined();
      expect(host.calls().at(-1)).toBe("systemctl stop attic-infra-rollback.timer");
      expect(host.file("deployed")).toBe(`${s.id}\n`);
      expect(host.file("pending")).toBeUndefined();
    });

    it("re-running an unchanged deploy rebuilds nothing", () => {
      const { s } = deployWithoutConfirm(MODULE_V1);
      run(s.confirm);
      const before = host.calls().length;
      const again = run(s.switch);
      expect(again.status).toBe(0);
      expect(again.stdout).toContain("already live and confirmed; nothing to do");
      expect(host.calls().length).toBe(before);
      expect(run(s.confirm).stdout).toContain("already confirmed");
    });

    it("a failing switch rolls back at once, restores the previous module, and surfaces the rebuild's error", () => {
      deployAndConfirm(MODULE_V1);
      host.set("fail-switch", true);
      const { result } = deployWithoutConfirm(MODULE_V2);
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain("warning: the following units failed: atticd.service");
      expect(result.stderr).toContain(
        "attic-infra: nixos-rebuild switch failed (last lines above); rolling back to system generation 2",
      );
      expect(host.generation()).toBe(2);
      expect(host.calls().slice(-3)).toEqual([
        "systemctl stop attic-infra-rollback.timer",
        "nix-env --profile " + host.paths.profile + " --switch-generation 2",
        "switch-to-configuration generation=2 switch",
      ]);
      expectHostAsBefore();
    });

    it("a failing health check after the switch rolls back to the previous generation", () => {
      deployAndConfirm(MODULE_V1);
      setHealthy(false);
      const { result } = deployWithoutConfirm(MODULE_V2);
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain(
        `attic-infra: atticd did not answer ${healthUrl} after the switch; rolling back to system generation 2`,
      );
      expectHostAsBefore();
    });

    it("a failing build changes nothing: no timer, no switch, files restored", () => {
      deployAndConfirm(MODULE_V1);
      host.set("fail-build", true);
      const { result } = deployWithoutConfirm(MODULE_V2);
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain("error: builder for '/nix/store/xxx-attic-server.drv' failed");
      expect(result.stderr).toContain(
        "attic-infra: nixos-rebuild build failed (last lines above); the host was not switched",
      );
      expectHostAsBefore();
      expect(host.calls().filter((c) => c.startsWith("systemd-run"))).toHaveLength(1);
    });

    it("without a confirm, the armed rollback is what remains, and when it fires the host is back", () => {
      deployAndConfirm(MODULE_V1);
      const { s, result } = deployWithoutConfirm(MODULE_V2);
      expect(result.status, result.stderr).toBe(0);
      expect(host.generation()).toBe(3);
      const timer = host.armedTimer();
      expect(timer).toEqual({
        "on-active": String(ROLLBACK_SECONDS),
        command: `/bin/sh ${host.paths.stateDir}/rollback.sh`,
      });

      // The timer fires (the confirm never came): systemd runs its command as root.
      const fired = run(timer!.command!);
      expect(fired.status, fired.stderr).toBe(0);
      expect(fired.stdout).toContain("rolled back to system generation 2");
      expect(host.generation()).toBe(2);
      expect(host.file("module")).toBe(MODULE_V1);

      const late = run(s.confirm);
      expect(late.status).not.toBe(0);
      expect(late.stderr).toContain("the dead-man timer already rolled the host back");
    });

    it("the secret travels only on stdin: never in a script, an argv, sshd's log or any output", async () => {
      const s = scripts(MODULE_V1);
      for (const text of Object.values(s)) expect(text).not.toContain(SECRET);
      // Snapshot every process's argv, over and over, into a file while the deploy runs.
      const snapshots = path.join(host.root, "ps.log");
      const watcher = spawn("sh", ["-c", `while :; do ps -eo args; done > ${snapshots}`], {
        stdio: "ignore",
      });
      deployWithoutConfirm(MODULE_V1);
      run(s.confirm);
      watcher.kill();
      const seen = readFileSync(snapshots, "utf8");
      const encoded = Buffer.from(SECRET).toString("base64");
      expect(seen).toContain("sshd");
      for (const text of [seen, ...outputs, host.calls().join("\n"), readFileSync(sshd.logFile, "utf8")]) {
        expect(text).not.toContain(SECRET);
        expect(text).not.toContain(encoded);
      }
      expect(host.file("env")).toContain(encoded);
    });

    it("refuses a host whose configuration does not import the module, saying how to fix it", async () => {
      sshd.stop();
      host = new FakeNixosHost({ importLine: false });
      sshd = await TestSshd.start({ binDir: host.binDir, env: { TEST_ROOT: host.root } });
      const r = run(uploadModuleScript(host.paths), MODULE_V1);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(
        `attic-infra: no .nix file in ${host.paths.configDir} imports ./attic-infra/atticd.nix`,
      );
      expect(host.file("module")).toBeUndefined();
    });

    it("refuses a host without nixos-rebuild: not NixOS", () => {
      const r = run(`PATH=/usr/bin:/bin\n${preflightScript(host.paths)}`);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/attic-infra: nixos-rebuild not found on .*: this is not a NixOS host/);
    });

    it("flake hosts in git: the switch adds the module to the index, so the flake build sees it", () => {
      const flakeDir = host.paths.configDir;
      spawnSync("git", ["-C", flakeDir, "init", "-q"]);
      const module = MODULE_V1;
      const moduleSha256 = sha256(module);
      const envSha256 = sha256(ENV);
      run(uploadModuleScript(host.paths), module);
      run(uploadEnvScript(host.paths), ENV);
      const r = run(
        switchScript({
          paths: host.paths,
          flake: `${flakeDir}#attic-cache`,
          stack: "test",
          moduleSha256,
          envSha256,
          rollbackTimeoutSeconds: ROLLBACK_SECONDS,
          buildTimeoutSeconds: 60,
          healthUrl,
        }),
      );
      expect(r.status, r.stderr).toBe(0);
      expect(host.calls()[0]).toBe(`nixos-rebuild build --flake ${flakeDir}#attic-cache`);
      expect(spawnSync("git", ["-C", flakeDir, "ls-files"], { encoding: "utf8" }).stdout).toContain(
        "attic-infra/atticd.nix",
      );
    });

    it("teardown empties the module and switches, keeps atticd's state, removes the key", () => {
      const { s } = deployWithoutConfirm(MODULE_V1);
      run(s.confirm);
      const r = run(teardownScript({ paths: host.paths, stack: "test", timeoutSeconds: 60 }));
      expect(r.status, r.stderr).toBe(0);
      expect(host.file("module")).toContain("was removed from this host");
      expect(host.file("module")).toContain("{ }");
      expect(host.file("env")).toBeUndefined();
      expect(host.calls().at(-2)).toBe("nixos-rebuild switch");
      expect(host.generation()).toBe(3);
    });
  },
);

describe("the office stack's scripts (synth)", () => {
  it("are the generated scripts for the default host paths, in files/", async () => {
    const { files } = await synthExample("office");
    const office = loadConfig(exampleConfig("office")).config.office!;
    const paths = defaultPaths(office.flake);
    expect(files["office/scripts/1-upload-module.sh"]).toBe(uploadModuleScript(paths));
    expect(files["office/scripts/2-upload-env.sh"]).toBe(uploadEnvScript(paths));
    expect(files["office/scripts/3-switch.sh"]).toContain(
      `HEALTH_URL='${listenFacts(office.listen).healthUrl}'`,
    );
    expect(files["office/scripts/3-switch.sh"]).toContain("--on-active=180 --unit=attic-infra-rollback");
    expect(files["office/atticd.env"]).toBe("[secret]");
  });

  it("the environment file carries the private key for atticd-atticadm, base64 of the PEM", () => {
    const office = loadConfig(exampleConfig("office")).config.office!;
    expect(environmentFile("PEM", office)).toBe(
      `ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64=${Buffer.from("PEM").toString("base64")}\n`,
    );
  });

  it("every remote step pins the host key from config, and the secret step logs nothing", async () => {
    const r = await synthExample("office", true);
    const commands = r.resources.filter((e) => e.type === "command:remote:Command");
    expect(commands.map((c) => c.name)).toEqual([
      "office-host",
      "office-module",
      "office-env",
      "office-switch",
      "office-confirm",
    ]);
    const office = loadConfig(exampleConfig("office")).config.office!;
    for (const c of commands) {
      expect(c.inputs.connection).toMatchObject({
        host: "10.0.0.10",
        port: 22,
        user: "root",
        hostKey: office.hostKey,
      });
    }
    const env = commands.find((c) => c.name === "office-env")!;
    expect(env.inputs.logging).toBe("none");
    expect(env.options.additionalSecretOutputs).toEqual(expect.arrayContaining(["stdout", "stderr"]));
    expect(env.inputs.create).not.toContain("ATTIC_SERVER_TOKEN");
    expect(env.inputs).not.toHaveProperty("environment");
    expect(String(env.inputs.stdin)).toMatch(/^ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64=[A-Za-z0-9+/]+=*\n$/);
    const hidden = await synthExample("office");
    expect(hidden.resources.find((e) => e.name === "office-env")!.inputs.stdin).toBe("[secret]");
  });

  it("each step's triggers are content hashes; confirm is its own resource after the switch", async () => {
    const r = await synthExample("office");
    const byName = (n: string) => r.resources.find((e) => e.name === n)!;
    expect(byName("office-module").inputs.triggers).toEqual([sha256(r.files["office/atticd.nix"]!)]);
    expect(byName("office-env").inputs.triggers).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/)]);
    expect(byName("office-switch").inputs.triggers).toEqual([expect.stringMatching(/^[0-9a-f]{32}$/)]);
    expect(byName("office-confirm").inputs.triggers).toEqual(byName("office-switch").inputs.triggers);
    expect(byName("office-confirm").options.dependsOn).toEqual([byName("office-switch").urn]);
    expect(byName("office-host").inputs).not.toHaveProperty("triggers");
    expect(byName("office-host").inputs.delete).toBe(r.files["office/scripts/teardown.sh"]);
  });

  it("a stack without hostKey and without insecureIgnoreHostKey is refused before deploying", () => {
    const config = exampleConfig("office");
    const office = JSON.parse(config["attic-infra:office"]!);
    delete office.hostKey;
    config["attic-infra:office"] = JSON.stringify(office);
    expect(() => loadConfig(config)).toThrow(/attic-infra:office\.hostKey: is required/);
  });

  it("flake hosts: the module lives in the flake, rebuilds use --flake, and the module is staged in git", async () => {
    const config = exampleConfig("office");
    const office = JSON.parse(config["attic-infra:office"]!);
    office.flake = "/etc/nixos#attic-cache";
    config["attic-infra:office"] = JSON.stringify(office);
    const { files } = await synth({ stack: "office", config });
    expect(files["office/scripts/3-switch.sh"]).toContain(
      "nixos-rebuild switch --flake '/etc/nixos#attic-cache'",
    );
    expect(files["office/scripts/3-switch.sh"]).toContain(
      "nixos-rebuild build --flake '/etc/nixos#attic-cache'",
    );
    expect(files["office/scripts/3-switch.sh"]).toContain('git -C "$CONFIG_DIR"');
  });
});

describe.skipIf(!haveTool("shellcheck"))("shellcheck", () => {
  it("passes every generated shell script: remote steps, rollback and backup scripts", async () => {
    const { files } = await synthExample("office", true);
    const scripts = Object.entries(files).filter(([f]) => f.endsWith(".sh"));
    expect(scripts.length).toBeGreaterThanOrEqual(5);
    const extra: Array<[string, string]> = [
      ["rollback.sh", rollbackScript(defaultPaths(), "41")],
      ["backup.sh", `#!/bin/sh\n${backupScript({ dir: "/var/backup/atticd", keep: 14 })}`],
      [
        "teardown-flake.sh",
        teardownScript({
          paths: defaultPaths("/etc/nixos#h"),
          flake: "/etc/nixos#h",
          stack: "s",
          timeoutSeconds: 60,
        }),
      ],
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
