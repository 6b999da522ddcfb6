/**
 * The NixOS host deployer over real SSH (OpenSSH server on 127.0.0.1, the real ssh client run by
 * the deploy's driver exactly as its local.Command runs it) against the fake NixOS host
 * (test/support/fakeNixosHost.ts: what it models and what it does not prove is in its header).
 *
 * Every scenario ends by asserting the host's running system, boot default, live module and
 * database; every retry is the deploy resource's create run again, as Pulumi re-runs it.
 * The failures (activation, health check, build, confirm, dead-man) are in nixosHost.failures.test.ts;
 * the interruptions (client killed, activation running, reboot, another deploy pending, the rollback
 * under systemd's environment) are in nixosHost.interrupt.test.ts; the scenarios whose outcome
 * depends on the site's module, environment file or service spec run there for the office and the
 * vps site (test/support/nixosSites.ts). The vps site's first deploy is in vps.deploy.test.ts.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { preflightScript, teardownScript } from "../components/nixosHost/scripts";
import { FakeNixosHost } from "./support/fakeNixosHost";
import {
  AT_V1,
  AT_V2,
  atticdModule,
  DeployRig,
  ENV,
  SECRET,
  startRigSshd,
  TIMES,
} from "./support/nixosDeploy";
import type { TestSshd } from "./support/sshd";
import { scaled } from "./support/timeScale";
import { keyLine, killOnceAgentRuns, watchSecrets } from "./support/sshKeyChecks";
import { haveTool } from "./support/tools";

const V1 = atticdModule(1);
const V2 = atticdModule(2);

describe.skipIf(!(haveTool("/usr/sbin/sshd") && haveTool("ssh") && haveTool("curl") && haveTool("sqlite3")))(
  "NixOS host deploy over SSH",
  () => {
    let sshd: TestSshd;
    beforeAll(async () => {
      sshd = await startRigSshd();
    });
    afterAll(() => sshd.stop());
    let rig: DeployRig;
    beforeEach(async () => {
      rig = await DeployRig.start(await FakeNixosHost.create(), { sshd });
    });
    afterEach(() => rig.stop());

    const deployOk = (module: string) => {
      const r = rig.deploy(module);
      expect(r.status, r.stderr).toBe(0);
      return r;
    };

    it("a first deploy activates with `test`, confirms over a second connection, then makes that exact system the boot default and the module live", () => {
      const r = deployOk(V1);
      expect(r.stdout).toContain(`armed: unless confirmed within ${TIMES.windowSeconds} s`);
      expect(r.stdout).toMatch(
        /confirmed deploy [0-9a-f]{32}: .* is the boot default and the module is live/,
      );
      expect(rig.host.state()).toMatchObject(AT_V1);
      const calls = rig.host.calls();
      const armed = calls.findIndex((c) =>
        c.includes(`--on-active=${TIMES.windowSeconds} --unit=attic-infra-rollback`),
      );
      const activated = calls.findIndex((c) => /^switch-to-configuration \S+ test$/.test(c));
      const system = calls[activated]!.split(" ")[1]!;
      expect(armed).toBeGreaterThan(
        calls.findIndex((c) => c.startsWith("nixos-rebuild build -I nixos-config=")),
      );
      expect(activated).toBeGreaterThan(armed);
      // The confirm sets the profile to the tested store path and makes it the boot default: no re-evaluation.
      expect(calls.slice(activated + 1)).toEqual(
        expect.arrayContaining([
          expect.stringMatching(new RegExp(`^nix-env -p ${rig.host.paths.profile} --set \\S+/${system}$`)),
          `switch-to-configuration ${system} boot`,
        ]),
      );
      expect(calls.filter((c) => c.startsWith("nixos-rebuild"))).toHaveLength(1);
      expect(statMode(path.join(rig.host.paths.stateDir, "atticd.env"))).toBe(0o600);
      expect(readFileSync(rig.host.service.environmentFile, "utf8")).toBe(ENV);
    });

    it("an unchanged deploy run again changes nothing on the host", () => {
      rig.seed(V1);
      const before = rig.host.calls().length;
      const again = deployOk(V1);
      expect(again.stdout).toContain("is live and confirmed; nothing to do");
      expect(again.stdout).toContain("already confirmed");
      expect(rig.host.calls().length).toBe(before);
    });

    it("a host deployed by the code before the pending path upgrades in one deploy, its leftovers removed", () => {
      rig.seed(V1);
      // What the old switch/confirm steps left: staged and previous copies, its rollback script, its id.
      const { stateDir, configDir } = rig.host.paths;
      spawnSync("sh", [
        "-c",
        `rm -rf "${stateDir}/confirmed" "${stateDir}/deployed.toplevel"
         echo 0123456789abcdef0123456789abcdef > "${stateDir}/deployed"
         for f in "${configDir}/attic-infra/atticd.nix.next" "${configDir}/attic-infra/atticd.nix.previous" "${stateDir}/atticd.env.next" "${stateDir}/atticd.env.previous" "${stateDir}/rollback.sh"; do echo old > "$f"; done`,
      ]);
      deployOk(V2);
      expect(rig.host.state()).toMatchObject(AT_V2);
      const left = spawnSync("sh", ["-c", `ls "${configDir}/attic-infra" "${stateDir}"`], {
        encoding: "utf8",
      }).stdout;
      expect(left).not.toMatch(/\.next|\.previous|rollback\.sh/);
    });

    it("the secrets travel only as they must: the environment file on stdin (never in a script, an argv, the host's logs or any output), the SSH key into a private ssh-agent (never on a command line or in a file)", () => {
      const driver = rig.driver(V1);
      expect(driver).not.toContain(SECRET);
      const encoded = Buffer.from(SECRET).toString("base64");
      expect(driver).not.toContain(encoded);
      const key = keyLine(path.join(rig.sshd.dir, "client_key"));
      const { result: r, log } = watchSecrets([encoded, key], rig.tmp, rig.host.root, () => deployOk(V1));
      expect(log).toContain("sshd");
      expect(log).toContain(`ssh-agent -D -a ${rig.tmp}/`);
      expect(log).not.toContain(key);
      expect(log).not.toMatch(/^FILE /m);
      for (const text of [
        log,
        r.stdout,
        r.stderr,
        rig.host.calls().join("\n"),
        readFileSync(rig.sshd.logFile, "utf8"),
      ]) {
        expect(text).not.toContain(encoded);
      }
      expect(readFileSync(rig.host.service.environmentFile, "utf8")).toContain(encoded);
    });

    it("a driver killed with SIGKILL (no trap runs) leaves no ssh-agent and no temporary files behind", async () => {
      const client = rig.deployInBackground(V1);
      try {
        const { exit, agents } = await killOnceAgentRuns(client, rig.tmp, "SIGKILL");
        expect(exit).toBe("SIGKILL");
        expect(agents).toEqual([]);
        expect(readdirSync(rig.tmp)).toEqual([]);
      } finally {
        // What the driver had started and no one stops: its ssh session.
        try {
          process.kill(-client.pid!, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    });

    it("teardown makes the module an empty one and switches to it, keeps the database, removes the environment file", () => {
      rig.seed(V1);
      const r = rig.run(
        teardownScript({
          paths: rig.host.paths,
          removedModule: "{ ... }: { } # removed\n",
          environmentFile: rig.host.service.environmentFile,
          timeoutSeconds: scaled(60).seconds,
        }),
      );
      expect(r.status, r.stderr).toBe(0);
      expect(rig.host.state()).toMatchObject({
        running: "none",
        bootDefault: "none",
        liveModule: "none",
        db: "m1",
        atticd: "stopped",
      });
      expect(spawnSync("test", ["-e", rig.host.service.environmentFile]).status).toBe(1);
    });

    it("refuses a host whose configuration does not import the module, saying how to fix it", async () => {
      rig.stop();
      rig = await DeployRig.start(await FakeNixosHost.create({ importLine: false }), { sshd });
      const r = rig.deploy(V1);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(
        `attic-infra: no .nix file in ${rig.host.paths.configDir} imports ./attic-infra/atticd.nix; add "imports = [ ./attic-infra/atticd.nix ];"`,
      );
      expect(rig.host.state()).toMatchObject({ running: "none", liveModule: undefined, pending: undefined });
    });

    it("refuses a host without nixos-rebuild: not NixOS", () => {
      const r = rig.run(`PATH=/usr/bin:/bin\n${preflightScript(rig.host.paths)}`);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/attic-infra: nixos-rebuild not found on .*: this is not a NixOS host/);
    });
  },
);

describe.skipIf(!(haveTool("/usr/sbin/sshd") && haveTool("git") && haveTool("sqlite3")))(
  "NixOS flake host deploy",
  () => {
    it("builds from a copy of the flake with the pending module in its git index, and adds the live module to the host's index at confirm", async () => {
      const host = await FakeNixosHost.create();
      const dir = host.paths.configDir;
      spawnSync("git", ["-C", dir, "init", "-q"]);
      const rig = await DeployRig.start(host, { flake: `${dir}#attic-cache` });
      try {
        const r = rig.deploy(V1);
        expect(r.status, r.stderr).toBe(0);
        expect(host.calls().find((c) => c.startsWith("nixos-rebuild"))).toMatch(
          /^nixos-rebuild build --flake \S+\/config#attic-cache$/,
        );
        expect(spawnSync("git", ["-C", dir, "ls-files"], { encoding: "utf8" }).stdout).toContain(
          "attic-infra/atticd.nix",
        );
        expect(host.state()).toMatchObject(AT_V1);
      } finally {
        rig.stop();
      }
    });
  },
);

function statMode(file: string): number {
  return statSync(file).mode & 0o777;
}
