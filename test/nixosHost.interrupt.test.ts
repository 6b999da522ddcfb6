/**
 * The NixOS host deployer when things are cut short, over real SSH against the fake NixOS host
 * (test/support/fakeNixosHost.ts): the SSH client killed mid-activation, the dead-man firing while
 * an activation still runs, and a reboot inside the window, for every site on the deployer (office
 * and vps, with each site's module, environment file and service spec: test/support/nixosSites.ts);
 * for the office, which these do not depend on: another deploy pending, the confirm racing the
 * rollback, and the rollback run as systemd runs it — today's script (before #10,
 * test/fixtures/office-rollback-before-10.sh) and the new one. Each ends by asserting the host's
 * running system, boot default, live module and database; each retry is the deploy resource's
 * create run again, as Pulumi re-runs it.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AT_V1, AT_V2, type DeployRig, sharedSshdRigs } from "./support/nixosDeploy";
import { type NixosSite, site, sites } from "./support/nixosSites";
import { waitFor } from "./support/timeScale";
import { haveTool } from "./support/tools";

const until = (what: string, condition: () => boolean) => waitFor(what, condition, 20);

describe.skipIf(!(haveTool("/usr/sbin/sshd") && haveTool("ssh") && haveTool("curl") && haveTool("sqlite3")))(
  "NixOS host deploy, interrupted",
  () => {
    const useRig = sharedSshdRigs();
    /** A rig per test for `s`, its host running a confirmed V1. */
    const seededRig = (s: NixosSite) => {
      const t = useRig(s);
      beforeEach(() => t.rig.seed(s.module(1)));
      afterEach(() => t.rig.host.set("hold-activation", false));
      return t;
    };
    /** A V2 deploy whose client is killed while the activation runs; the activation goes on. */
    const killClientMidActivation = async (rig: DeployRig, V2: string) => {
      rig.host.set("hold-activation", true);
      const client = rig.deployInBackground(V2);
      await until("the activation to start", () => rig.host.activating());
      process.kill(-client.pid!, "SIGKILL");
    };

    describe.each(sites)("the $name site", (s) => {
      const t = seededRig(s);
      const V2 = s.module(2);

      it("SSH client killed mid-activation: the activation finishes on its own; a retry resumes and confirms it", async () => {
        await killClientMidActivation(t.rig, V2);
        t.rig.host.set("hold-activation", false);
        await t.rig.host.waitForUnit("attic-infra-activate");
        expect(t.rig.host.state()).toMatchObject({
          running: "v2",
          bootDefault: "v1",
          liveModule: "v1",
          timerArmed: true,
        });

        const retry = t.rig.deploy(V2);
        expect(retry.status, retry.stderr).toBe(0);
        expect(retry.stdout).toMatch(
          /resuming deploy [0-9a-f]{32}: .* is active, answers .*, and awaits the confirm/,
        );
        expect(t.rig.host.state()).toMatchObject(AT_V2);
      });

      it("the dead-man fires while the activation still runs: the rollback waits for the activation lock, then rolls back; a retry converges", async () => {
        await killClientMidActivation(t.rig, V2);
        const fired = t.rig.host.fireTimer();
        const log = path.join(t.rig.host.root, "units/attic-infra-rollback.log");
        await until("the rollback to wait", () =>
          readFileSync(log, "utf8").includes("an activation is running; waiting"),
        );
        t.rig.host.set("hold-activation", false);
        const result = await fired;
        expect(result.status, result.log).toBe(0);
        expect(result.log).toContain("rolled back deploy");
        expect(t.rig.host.state()).toMatchObject(AT_V1);

        const retry = t.rig.deploy(V2);
        expect(retry.status, retry.stderr).toBe(0);
        expect(t.rig.host.state()).toMatchObject(AT_V2);
      });

      it("a reboot inside the window boots the last confirmed system; a retry rolls the leftover back (database included) and converges", () => {
        const r = t.rig.deployWithoutConfirm(V2);
        expect(r.status, r.stderr).toBe(0);
        t.rig.host.reboot();
        // What the reboot leaves: the confirmed system and module, v2's migrated database, which
        // v1's atticd refuses (no down-migrations), and no timer.
        expect(t.rig.host.state()).toMatchObject({
          running: "v1",
          bootDefault: "v1",
          liveModule: "v1",
          db: "m1,m2",
          atticd: "stopped",
          timerArmed: false,
        });
        expect(t.rig.host.state().pending).toMatch(/^[0-9a-f]{32}$/);

        const retry = t.rig.deploy(V2);
        expect(retry.status, retry.stderr).toBe(0);
        expect(retry.stderr).toContain(
          "was left unconfirmed without an armed rollback (the host rebooted inside the window",
        );
        expect(t.rig.host.state()).toMatchObject(AT_V2);
      });
    });

    describe("the office site (steps that do not depend on the site)", () => {
      const t = seededRig(site("office"));
      const V1 = site("office").module(1);
      const V2 = site("office").module(2);
      const V3 = site("office").module(3);

      it("the dead-man fires while the confirm holds the deploy lock: the confirm wins, the rollback finds nothing to do", async () => {
        t.rig.host.set("hold-boot", true);
        const client = t.rig.deployInBackground(V2);
        const installing = path.join(t.rig.host.root, "run/installing-bootloader");
        await until("the confirm to install the boot loader", () => existsSync(installing));
        const fired = t.rig.host.fireTimer();
        const log = path.join(t.rig.host.root, "units/attic-infra-rollback.log");
        await until("the rollback unit to start", () => existsSync(log));
        t.rig.host.set("hold-boot", false);
        const exited = await new Promise<number | null>((resolve) => client.once("exit", resolve));
        expect(exited).toBe(0);
        const result = await fired;
        expect(result.status, result.log).toBe(0);
        expect(result.log).toContain("is not pending (confirmed, or already rolled back): nothing to do");
        expect(t.rig.host.state()).toMatchObject(AT_V2);
      });

      it("a deploy with another id pending and armed is refused with how to resolve it; after its rollback the new one converges", async () => {
        expect(t.rig.deployWithoutConfirm(V2).status).toBe(0);
        const refused = t.rig.deploy(V3);
        expect(refused.status).toBe(1);
        expect(refused.stderr).toMatch(
          /attic-infra: deploy [0-9a-f]{32}, not this one \([0-9a-f]{32}\), awaits confirmation on .* and its rollback is armed\. Let it roll back \(journalctl -u attic-infra-rollback\) or roll back now with: systemctl start attic-infra-rollback\.service — then run pulumi up again/,
        );
        expect(t.rig.host.state()).toMatchObject({
          running: "v2",
          bootDefault: "v1",
          liveModule: "v1",
          timerArmed: true,
        });

        expect((await t.rig.host.fireTimer()).status).toBe(0);
        const retry = t.rig.deploy(V3);
        expect(retry.status, retry.stderr).toBe(0);
        expect(t.rig.host.state()).toMatchObject({
          ...AT_V1,
          running: "v3",
          bootDefault: "v3",
          liveModule: "v3",
          db: "m1,m2,m3",
        });
      });

      it("the rollback, run as systemd runs a timer's unit (env -i, PATH with only systemctl), restores system, module and database", async () => {
        expect(t.rig.deployWithoutConfirm(V2).status).toBe(0);
        expect(t.rig.host.state()).toMatchObject({ running: "v2", db: "m1,m2" });
        const fired = await t.rig.host.fireTimer();
        expect(fired.status, fired.log).toBe(0);
        expect(t.rig.host.state()).toMatchObject(AT_V1);
      });

      it("today's rollback (before #10), run the same way, reports success and leaves the new system running", async () => {
        // The host as the old switch step left it: generation 3 (v2) switched, v1's module kept as .previous.
        const h = t.rig.host;
        const moduleDir = path.join(h.paths.configDir, "attic-infra");
        const v2file = path.join(h.root, "v2.nix");
        writeFileSync(v2file, V2);
        const v2 = execFileSync(path.join(h.root, "lib/make-system"), [v2file], { encoding: "utf8" }).trim();
        execFileSync(path.join(h.root, "bin/nix-env"), ["-p", h.paths.profile, "--set", v2]);
        execFileSync(`${v2}/bin/switch-to-configuration`, ["switch"]);
        writeFileSync(path.join(moduleDir, "atticd.nix.previous"), V1);
        writeFileSync(path.join(moduleDir, "atticd.nix"), V2);
        const generation = /system-(\d+)-link/.exec(h.profileTarget())![1]!;
        const old = readFileSync(path.join(__dirname, "fixtures/office-rollback-before-10.sh"), "utf8")
          .replaceAll("@MODULE_DIR@", moduleDir)
          .replaceAll("@STATE@", h.paths.stateDir)
          .replaceAll("@PROFILE@", h.paths.profile)
          .replaceAll("@GENERATION@", String(Number(generation) - 1));
        const script = path.join(h.root, "old-rollback.sh");
        writeFileSync(script, old);
        // systemd starts the timer's unit: clean environment, PATH = systemd's own bin/.
        execFileSync(path.join(h.root, "lib/start-unit"), ["old-rollback", "/bin/sh", script]);
        const r = await h.waitForUnit("old-rollback");
        expect(r.log).toContain("cp: not found");
        expect(r.log).toContain("nix-env: not found");
        expect(r.status).toBe(0);
        expect(r.log).toContain("rolled back to system generation");
        expect(h.state()).toMatchObject({ running: "v2", bootDefault: "v2", liveModule: "v2", db: "m1,m2" });
      });
    });
  },
);
