/**
 * The shared NixOS host deployer run for the vps site over real SSH (OpenSSH on 127.0.0.1, the
 * deploy's driver run as its local.Command runs it) against the fake NixOS host
 * (test/support/fakeNixosHost.ts says what it models and what it does not prove), with the vps
 * site's service spec (components/vps/site.ts) and its generated module.
 *
 * The vps difference from the office is atticd's `allowed-hosts = [<domain>]`: here atticd's health
 * endpoint is a stand-in that models it as atticd does (FACTS.md, server/src/api: a request whose
 * Host is not in the list gets 400 "Bad Host", on every route) and otherwise answers like the fake
 * host's own (200 while atticd runs healthily). Not proven here: Caddy/NGINX, the certificate,
 * PostgreSQL (the fake's atticd keeps SQLite), and that the real module builds.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { vpsModuleText } from "../components/vps/module";
import { vpsServiceSpec } from "../components/vps/site";
import { loadConfig } from "../config/load";
import { FakeNixosHost, type HostState } from "./support/fakeNixosHost";
import { DeployRig } from "./support/nixosDeploy";
import { exampleConfig } from "./support/stacks";
import { haveTool } from "./support/tools";

const { attic, vps } = (() => {
  const { config } = loadConfig(exampleConfig("vps"));
  return { attic: config.attic!, vps: config.vps! };
})();
/** The vps module as the site generates it, marked for the fake's atticd (version, behaviour). */
const module = (version: number, marker = "") =>
  `${vpsModuleText(attic, vps, "vps")}# atticd-version: ${version} ${marker}\n`;

const AT_V1: Partial<HostState> = {
  running: "v1",
  bootDefault: "v1",
  liveModule: "v1",
  atticd: "ok",
  pending: undefined,
  timerArmed: false,
};

/** atticd's health endpoint with allowed-hosts: the Host must be the domain, exactly. */
async function allowedHostsHealth(host: FakeNixosHost, domain: string): Promise<ChildProcess> {
  const flag = path.join(host.root, "run/atticd.running");
  const server = spawn(
    process.execPath,
    [
      "-e",
      `const fs = require("fs");
       const s = require("http").createServer((q, r) => {
         if (q.headers.host !== ${JSON.stringify(domain)}) { r.writeHead(400); r.end("Bad Host"); return; }
         let ok = false; try { ok = fs.readFileSync(${JSON.stringify(flag)}, "utf8").trim() === "ok"; } catch {}
         r.writeHead(ok ? 200 : 503); r.end(ok ? "attic" : "down");
       });
       s.listen(0, "127.0.0.1", () => console.log(s.address().port));`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const port = await new Promise<string>((resolve) =>
    server.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim())),
  );
  // The site's spec, with the fake host's file locations and this endpoint's port.
  Object.assign(host.service, {
    ...vpsServiceSpec(vps),
    environmentFile: host.service.environmentFile,
    database: host.service.database,
    healthUrl: `http://127.0.0.1:${port}/`,
  });
  return server;
}

describe.skipIf(!(haveTool("/usr/sbin/sshd") && haveTool("ssh") && haveTool("curl") && haveTool("sqlite3")))(
  "the vps site's deploy over SSH (shared NixOS host deployer)",
  () => {
    let rig: DeployRig;
    let health: ChildProcess;
    beforeEach(async () => {
      const host = await FakeNixosHost.create();
      health = await allowedHostsHealth(host, vps.domain);
      rig = await DeployRig.start(host);
    });
    afterEach(() => {
      health.kill();
      rig.stop();
    });

    it("a first deploy passes atticd's allowed-hosts (Host: <domain>), confirms, and a re-run changes nothing", () => {
      // The endpoint refuses any other Host, so the deploy's health check and confirm only pass
      // because the site's spec sends the domain.
      const plain = spawnSync(
        "curl",
        ["-s", "-o", "/dev/null", "-w", "%{http_code}", rig.host.service.healthUrl],
        {
          encoding: "utf8",
        },
      );
      expect(plain.stdout).toBe("400");
      expect(rig.host.service.healthHost).toBe("cache.example.com");
      const r = rig.deploy(module(1));
      expect(r.status, r.stderr).toBe(0);
      expect(rig.host.state()).toMatchObject(AT_V1);
      const before = rig.host.calls().length;
      const again = rig.deploy(module(1));
      expect(again.status, again.stderr).toBe(0);
      expect(again.stdout).toContain("nothing to do");
      expect(rig.host.calls().length).toBe(before);
    });

    it("the dead-man fires when the confirm cannot connect (sshFrom dropped the deployer); a retry converges", async () => {
      const cutoff = path.join(rig.host.root, "cutoff-bin");
      spawnSync("sh", [
        "-c",
        `mkdir -p ${cutoff} && printf '%s\\n' '#!/bin/sh' 'n=$(cat ${cutoff}/n 2>/dev/null || echo 0); echo $((n + 1)) > ${cutoff}/n' '[ "$n" = 0 ] || { echo "ssh: connect to host 127.0.0.1: Connection timed out" >&2; exit 255; }' 'exec /usr/bin/ssh "$@"' > ${cutoff}/ssh && chmod +x ${cutoff}/ssh`,
      ]);
      const r = rig.deploy(module(1), { path: cutoff });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain("over a new SSH connection to confirm deploy");
      expect(rig.host.state()).toMatchObject({ running: "v1", liveModule: undefined, timerArmed: true });
      const fired = await rig.host.fireTimer();
      expect(fired.status, fired.log).toBe(0);
      expect(rig.host.state()).toMatchObject({ running: "none", bootDefault: "none", timerArmed: false });
      const retry = rig.deploy(module(1));
      expect(retry.status, retry.stderr).toBe(0);
      expect(rig.host.state()).toMatchObject(AT_V1);
    });
  },
);
