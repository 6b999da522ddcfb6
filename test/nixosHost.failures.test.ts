/**
 * The NixOS host deployer when a step fails, over real SSH against the fake NixOS host
 * (test/support/fakeNixosHost.ts): a failed activation, health check and the dead-man firing
 * because the confirm could not connect, for every site on the deployer (office and vps, with each
 * site's module, environment file and service spec: test/support/nixosSites.ts); a failed build
 * and a failed confirm, which do not depend on the site, for the office. Each ends by asserting
 * the host's running system, boot default, live module and database; each retry is the deploy
 * resource's create run again, as Pulumi re-runs it.
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { AT_V1, AT_V2, sharedSshdRigs, TIMES } from "./support/nixosDeploy";
import { site, sites } from "./support/nixosSites";
import { haveTool } from "./support/tools";

describe.skipIf(!(haveTool("/usr/sbin/sshd") && haveTool("ssh") && haveTool("curl") && haveTool("sqlite3")))(
  "NixOS host deploy, failing",
  () => {
    const useRig = sharedSshdRigs();

    describe.each(sites)("the $name site", (s) => {
      const t = useRig(s);
      const V1 = s.module(1);
      const V2 = s.module(2);
      const deployOk = (module: string) => {
        const r = t.rig.deploy(module);
        expect(r.status, r.stderr).toBe(0);
        return r;
      };
      it("a failed activation rolls back through the rollback unit; a retry fails the same way; the fixed module converges", () => {
        t.rig.seed(V1);
        const broken = s.module(2, "atticd-fails-to-start");
        const r = t.rig.deploy(broken);
        expect(r.status).toBe(1);
        expect(r.stderr).toContain("warning: the following units failed: atticd.service");
        expect(r.stderr).toMatch(
          /attic-infra: activating \S+ failed \(last lines above\); the host was rolled back/,
        );
        expect(r.stderr).toMatch(
          /attic-infra: deploy [0-9a-f]{32} failed on .* Run pulumi up again once the cause is fixed\./,
        );
        expect(t.rig.host.state()).toMatchObject(AT_V1);

        const retry = t.rig.deploy(broken);
        expect(retry.status).toBe(1);
        expect(retry.stderr).toContain("the host was rolled back");
        expect(t.rig.host.state()).toMatchObject(AT_V1);

        deployOk(V2);
        expect(t.rig.host.state()).toMatchObject(AT_V2);
      });

      it("a failed health check rolls back the system and the database it migrated; the fixed module converges", () => {
        t.rig.seed(V1);
        const r = t.rig.deploy(s.module(2, "atticd-answers-503"));
        expect(r.status).toBe(1);
        expect(r.stderr).toContain(
          `attic-infra: ${t.rig.host.service.healthUrl} did not answer within ${TIMES.healthSeconds} s of the activation`,
        );
        expect(r.stderr).toContain("the host was rolled back");
        expect(t.rig.host.state()).toMatchObject(AT_V1);

        deployOk(V2);
        expect(t.rig.host.state()).toMatchObject(AT_V2);
      });

      it("the dead-man fires when the confirm cannot connect; the host is back, a late confirm says so, a retry converges", async () => {
        t.rig.seed(V1);
        // The new system cuts the host off: every ssh after the deploy session fails to connect.
        const cutoff = path.join(t.rig.host.root, "cutoff-bin");
        spawnSync("sh", [
          "-c",
          `mkdir -p ${cutoff} && printf '%s\\n' '#!/bin/sh' 'n=$(cat ${cutoff}/n 2>/dev/null || echo 0); echo $((n + 1)) > ${cutoff}/n' '[ "$n" = 0 ] || { echo "ssh: connect to host 127.0.0.1: Connection timed out" >&2; exit 255; }' 'exec /usr/bin/ssh "$@"' > ${cutoff}/ssh && chmod +x ${cutoff}/ssh`,
        ]);
        const r = t.rig.deploy(V2, { path: cutoff });
        expect(r.status).toBe(1);
        expect(r.stderr).toContain("over a new SSH connection to confirm deploy");
        expect(r.stderr).toContain(
          `It rolls back by itself within ${TIMES.windowSeconds} s; run pulumi up again once the host answers.`,
        );
        expect(t.rig.host.state()).toMatchObject({
          running: "v2",
          bootDefault: "v1",
          liveModule: "v1",
          timerArmed: true,
        });

        const fired = await t.rig.host.fireTimer();
        expect(fired.status, fired.log).toBe(0);
        expect(fired.log).toContain("restored the database snapshot taken before the switch");
        expect(t.rig.host.state()).toMatchObject(AT_V1);

        const late = t.rig.confirm(V2);
        expect(late.status).toBe(1);
        expect(late.stderr).toContain("was rolled back before it was confirmed (the dead-man timer fired");

        deployOk(V2);
        expect(t.rig.host.state()).toMatchObject(AT_V2);
      });
    });

    describe("the office site (steps that do not depend on the site)", () => {
      const t = useRig(site("office"));
      const V1 = site("office").module(1);
      const V2 = site("office").module(2);
      const deployOk = (module: string) => {
        const r = t.rig.deploy(module);
        expect(r.status, r.stderr).toBe(0);
        return r;
      };

      it("a failed build activates nothing and arms nothing", () => {
        t.rig.seed(V1);
        t.rig.host.set("fail-build", true);
        const r = t.rig.deploy(V2);
        expect(r.status).toBe(1);
        expect(r.stderr).toContain("error: builder for '/nix/store/xxx-attic-server.drv' failed");
        expect(r.stderr).toContain(
          "nixos-rebuild build failed (last lines above); nothing was activated, the host is unchanged",
        );
        expect(t.rig.host.calls().filter((c) => c.includes("--on-active"))).toHaveLength(1);
        expect(t.rig.host.state()).toMatchObject(AT_V1);
        t.rig.host.set("fail-build", false);
        deployOk(V2);
        expect(t.rig.host.state()).toMatchObject(AT_V2);
      });

      it("a confirm that fails halfway (boot loader) leaves the rollback armed; it restores the boot default and module; a retry converges", async () => {
        t.rig.seed(V1);
        t.rig.host.set("fail-boot", true);
        const r = t.rig.deploy(V2);
        expect(r.status).toBe(1);
        expect(r.stderr).toContain("Failed to install bootloader");
        expect(r.stderr).toMatch(
          /attic-infra: the confirm of deploy [0-9a-f]{32} failed on .*Run pulumi up again\./,
        );
        // The profile already points at v2: the rollback must put the boot default back.
        expect(t.rig.host.profileSystem()).toBe("v2");
        expect(t.rig.host.state()).toMatchObject({ running: "v2", liveModule: "v1", timerArmed: true });
        t.rig.host.set("fail-boot", false);

        const fired = await t.rig.host.fireTimer();
        expect(fired.status, fired.log).toBe(0);
        expect(t.rig.host.state()).toMatchObject(AT_V1);
        expect(t.rig.host.profileSystem()).toBe("v1");

        deployOk(V2);
        expect(t.rig.host.state()).toMatchObject(AT_V2);
      });
    });
  },
);
