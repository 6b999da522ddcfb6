/**
 * The shared NixOS host deployer run for the vps site over real SSH (OpenSSH on 127.0.0.1, the
 * deploy's driver run as its local.Command runs it) against the fake NixOS host
 * (test/support/fakeNixosHost.ts says what it models and what it does not prove), with the vps
 * site's service spec (components/vps/site.ts), environment file and generated module
 * (test/support/nixosSites.ts): the first deploy and its no-op re-run. The vps site's rollback and
 * retry scenarios run with the office's, per site, in nixosHost.failures.test.ts and
 * nixosHost.interrupt.test.ts.
 *
 * The vps difference from the office is atticd's `allowed-hosts = [<domain>]`: the fake's health
 * endpoint models it as atticd does (FACTS.md, server/src/api: a request whose Host is not in the
 * list gets 400 "Bad Host", on every route). Not proven here: Caddy/NGINX, the certificate,
 * PostgreSQL (the fake's atticd keeps SQLite), and that the real module builds.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { AT_V1, sharedSshdRigs } from "./support/nixosDeploy";
import { site } from "./support/nixosSites";
import { haveTool } from "./support/tools";

const vps = site("vps");

describe.skipIf(!(haveTool("/usr/sbin/sshd") && haveTool("ssh") && haveTool("curl") && haveTool("sqlite3")))(
  "the vps site's deploy over SSH (shared NixOS host deployer)",
  () => {
    const t = sharedSshdRigs()(vps);

    it("a first deploy passes atticd's allowed-hosts (Host: <domain>), confirms, and a re-run changes nothing", () => {
      const { rig } = t;
      // The endpoint refuses any other Host, so the deploy's health check and confirm only pass
      // because the site's spec sends the domain.
      const plain = spawnSync(
        "curl",
        ["-s", "-o", "/dev/null", "-w", "%{http_code}", rig.host.service.healthUrl],
        { encoding: "utf8" },
      );
      expect(plain.stdout).toBe("400");
      expect(rig.host.service.healthHost).toBe("cache.example.com");
      const r = rig.deploy(vps.module(1));
      expect(r.status, r.stderr).toBe(0);
      expect(rig.host.state()).toMatchObject(AT_V1);
      const before = rig.host.calls().length;
      const again = rig.deploy(vps.module(1));
      expect(again.status, again.stderr).toBe(0);
      expect(again.stdout).toContain("nothing to do");
      expect(rig.host.calls().length).toBe(before);
    });
  },
);
