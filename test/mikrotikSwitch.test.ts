/**
 * The transport end to end against the RouterOS-subset stand-in (support/fakeRouteros.ts) behind a
 * real sshd: a fresh switch applied, uploads over SFTP, `/import`, the done line, the version and
 * ftp gates, backups pruned, the host key, the private key and signals; the switch's state after
 * each. The dead-man, retries and teardown are in mikrotikRetry.test.ts; what the scripts do in
 * other situations (twice, dynamic entries, refusals, removed items, an own bridge) is in
 * mikrotikScripts.test.ts, on the same stand-in in process.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { bundle, checkScript, switchModel } from "../components/mikrotik/routeros";
import { sshWrapperScript } from "../components/mikrotik/ssh";
import { loadConfig } from "../config/load";
import type { Item } from "./support/fakeRouteros";
import { FakeSwitch, SFTP_SERVER } from "./support/fakeSwitch";
import { exampleConfig } from "./support/stacks";
import {
  agentsUnder,
  keyLine,
  killOnceAgentRuns,
  processesUnder,
  watchSecrets,
} from "./support/sshKeyChecks";
import { scaled, waitFor } from "./support/timeScale";
import { haveTool } from "./support/tools";

const M = "attic-infra:office";
const mikrotik = () => loadConfig(exampleConfig("office")).config.mikrotik!;
const model = switchModel(mikrotik(), M);
const ours = (items: Item[]) => items.filter((i) => i.props.comment === M);

describe.skipIf(!(haveTool("/usr/sbin/sshd") && haveTool("ssh") && haveTool(SFTP_SERVER)))(
  "the switch (RouterOS stand-in behind sshd)",
  () => {
    let sw: FakeSwitch;
    beforeAll(async () => {
      sw = await FakeSwitch.start();
    });
    afterAll(() => sw?.stop());
    beforeEach(() => sw.reset());

    it("fresh switch → apply: the cache VLAN on the existing hardware-offloaded bridge, DHCP, DNS, nothing left armed", () => {
      const r = sw.deploy(model);
      expect(r.status, r.stderr).toBe(0);
      const s = sw.state;
      const ports = ours(s.menus["interface bridge port"]!);
      expect(ports.map((p) => [p.props.interface, p.props.bridge, p.props.pvid])).toEqual(
        ["ether1", "ether2", "ether3", "ether4"].map((e) => [e, "bridge", 10]),
      );
      // The one offloaded bridge: no second bridge, every port of ours switched by the chip.
      expect(s.menus["interface bridge"]!.map((b) => b.props.name)).toEqual(["bridge"]);
      const router = sw.router();
      expect(ports.map((p) => router.prop("interface bridge port", p, "hw-offload"))).toEqual([
        true,
        true,
        true,
        true,
      ]);
      expect(s.menus["interface bridge"]![0]!.props["vlan-filtering"]).toBe(true);
      expect(ours(s.menus["interface bridge vlan"]!).map((v) => v.props)).toEqual([
        {
          bridge: "bridge",
          "vlan-ids": 10,
          tagged: "bridge",
          untagged: "ether1,ether2,ether3,ether4",
          comment: M,
        },
      ]);
      expect(ours(s.menus["interface vlan"]!).map((v) => v.props)).toEqual([
        { name: "attic-vlan10", interface: "bridge", "vlan-id": 10, comment: M },
      ]);
      expect(ours(s.menus["ip address"]!).map((a) => a.props.address)).toEqual(["10.0.0.1/24"]);
      expect(ours(s.menus["ip dhcp-server"]!).map((d) => [d.props.interface, d.props.disabled])).toEqual([
        ["attic-vlan10", false],
      ]);
      expect(
        ours(s.menus["ip dhcp-server lease"]!).map((l) => [l.props["mac-address"], l.props.address]),
      ).toEqual([["AA:BB:CC:DD:EE:01", "10.0.0.10"]]);
      expect(ours(s.menus["ip dns static"]!).map((d) => [d.props.name, d.props.address])).toEqual([
        ["attic.lan", "10.0.0.10"],
      ]);
      expect(s.settings["ip dns"]).toEqual({ servers: "1.1.1.1,9.9.9.9", "allow-remote-requests": true });
      // DNS answered on the cache VLAN only.
      expect(
        s.menus["ip firewall filter"]!.map((f) => [
          f.props.action,
          f.props.protocol,
          f.props["in-interface"] ?? "any",
        ]),
      ).toEqual([
        ["accept", "udp", "attic-vlan10"],
        ["accept", "tcp", "attic-vlan10"],
        ["drop", "udp", "any"],
        ["drop", "tcp", "any"],
      ]);
      // The management port and the default bridge's other ports are untouched.
      const defconf = s.menus["interface bridge port"]!.filter((p) => p.props.comment === "defconf");
      expect(defconf.find((p) => p.props.interface === "ether24")!.props).toMatchObject({
        pvid: 1,
        bridge: "bridge",
      });
      expect(s.menus["system scheduler"]).toEqual([]);
      expect(sw.files()).toEqual([
        expect.stringMatching(/^attic-infra-\d{8}-\d{6}\.backup$/),
        expect.stringMatching(/^attic-infra-\d{8}-\d{6}\.rsc$/),
        "attic-infra-dns-before.rsc",
      ]);
      // The apply's output carries the marked objects for drift detection.
      expect(r.stdout).toContain(
        `/interface vlan add name=attic-vlan10 interface=bridge vlan-id=10 comment=${M}`,
      );
    });

    it("keeps the newest three attic-infra backups and exports; others' files stay", () => {
      sw.change(() => {
        for (const stem of [
          "attic-infra-20200101-000000",
          "attic-infra-20210101-000000",
          "attic-infra-20220101-000000",
        ])
          for (const ext of ["backup", "rsc"])
            writeFileSync(path.join(sw.stateDir, "files", `${stem}.${ext}`), "old");
        writeFileSync(path.join(sw.stateDir, "files", "flash-notes.txt"), "someone else's");
      });
      expect(sw.deploy(model).status).toBe(0);
      const backups = sw.files().filter((f) => f.endsWith(".backup"));
      expect(backups).toHaveLength(3);
      expect(backups.slice(0, 2)).toEqual([
        "attic-infra-20210101-000000.backup",
        "attic-infra-20220101-000000.backup",
      ]);
      expect(sw.files()).toContain("attic-infra-20210101-000000.rsc");
      expect(sw.files()).not.toContain("attic-infra-20200101-000000.rsc");
      expect(sw.files()).toContain("flash-notes.txt");
    });

    it("an SSH server that runs one session per connection: every command opens its own connection, and the deploy succeeds", () => {
      writeFileSync(path.join(sw.stateDir, "one-session-per-connection"), "");
      try {
        const r = sw.deploy(model);
        expect(r.status, r.stderr).toBe(0);
        expect(ours(sw.state.menus["interface vlan"]!).map((v) => v.props.name)).toEqual(["attic-vlan10"]);
        expect(sw.state.menus["system scheduler"]).toEqual([]);
      } finally {
        rmSync(path.join(sw.stateDir, "one-session-per-connection"));
      }
    });

    it("RouterOS 7.12: refused with a sentence before anything is uploaded", () => {
      sw.reset({ version: "7.12.1 (stable)" });
      const before = sw.config;
      const r = sw.deploy(model);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(
        "runs RouterOS 7.12.1 (stable); attic-infra needs RouterOS 7.13 or newer ('export … where' exists only from 7.13). Upgrade it (/system package update install), then run pulumi up again",
      );
      expect(sw.config).toEqual(before);
      expect(sw.files()).toEqual([]);
    });

    it("a user whose group lacks the ftp policy: refused with a sentence naming the policy", () => {
      sw.reset({ group: "write" });
      const before = sw.config;
      const r = sw.deploy(model);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(
        "over SFTP. RouterOS accepts uploads only from users whose group has the ftp policy (the built-in write group has !ftp)",
      );
      expect(sw.config).toEqual(before);
    });

    it("the stand-in runs only the first line of a multi-line exec and reports errors as text with exit status 0", () => {
      const r = sw.sshd.run(
        "/ip pool add name=a ranges=10.1.1.1-10.1.1.2\n/ip pool add name=b ranges=10.1.1.3-10.1.1.4",
      );
      expect(r.status).toBe(0);
      expect(sw.state.menus["ip pool"]!.map((p) => p.props.name)).toEqual(["a"]);
      const bad = sw.sshd.run("/ip pool frobnicate");
      expect(bad.status).toBe(0);
      expect(bad.stdout.trim()).toBe("bad command name frobnicate (line 1 column 10)");
    });

    it("refuses a switch whose host key is not the pinned one, before anything runs", () => {
      const other = readFileSync(path.join(sw.sshd.dir, "client_key.pub"), "utf8").trim();
      const before = sw.config;
      const r = sw.deploy(model, { ROUTEROS_HOST_KEY: other });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/);
      expect(sw.config).toEqual(before);
    });

    it("the private key goes to a private ssh-agent: never on a command line, never in a file", () => {
      const key = keyLine(path.join(sw.sshd.dir, "client_key"));
      const tmp = sw.scratch("tmp-");
      // The holder's check: version gate, agent, upload, import — every use of the key.
      const { result: r, log } = watchSecrets([key], tmp, sw.scratch("watch-"), () =>
        sw.run(bundle([{ name: "check", script: checkScript(M) }]), { TMPDIR: tmp }),
      );
      expect(r.status, r.stderr).toBe(0);
      expect(log).toContain(`ssh-agent -D -a ${tmp}/`);
      expect(log).not.toContain(key);
      expect(log).not.toMatch(/^FILE /m);
    });

    for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
      it(`a transport killed with ${signal} leaves no ssh-agent and no temporary files behind`, async () => {
        const tmp = sw.scratch("tmp-");
        const child = spawn("/bin/sh", ["-c", sshWrapperScript()], {
          env: sw.env({ TMPDIR: tmp }),
          stdio: ["pipe", "ignore", "ignore"],
        });
        child.stdin.end(bundle([{ name: "check", script: checkScript(M) }]));
        const { exit, agents } = await killOnceAgentRuns(child, tmp, signal);
        expect(exit).toBe({ SIGTERM: 143, SIGINT: 130, SIGHUP: 129 }[signal]);
        expect(agents).toEqual([]);
        expect(readdirSync(tmp)).toEqual([]);
      });
    }

    it("a transport killed with SIGKILL while its connection is open leaves no SSH connection, agent or file behind", async () => {
      const tmp = sw.scratch("tmp-");
      // An upload that waits (until its deadline; the test never releases it): the transport is
      // killed while it holds its connection open.
      const slow = sw.scratch("slow-");
      writeFileSync(
        path.join(slow, "scp"),
        `#!/bin/sh\nend=$(($(date +%s) + ${scaled(60).seconds}))\nwhile [ "$(date +%s)" -lt "$end" ]; do sleep 0.05; done\nexec /usr/bin/scp "$@"\n`,
        { mode: 0o755 },
      );
      const child = spawn("/bin/sh", ["-c", sshWrapperScript()], {
        env: sw.env({ TMPDIR: tmp, PATH: `${slow}:${process.env.PATH}` }),
        stdio: ["pipe", "ignore", "pipe"],
        detached: true,
      });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      let exited = false;
      child.on("exit", () => (exited = true));
      const upload = () => {
        if (exited) throw new Error(`the transport exited before its upload: ${stderr}`);
        return uploading();
      };
      child.stdin.end(bundle([{ name: "check", script: checkScript(M) }]));
      const masters = () => processesUnder(tmp).filter((l) => l.startsWith("ssh ") && l.includes(" -M "));
      const uploading = () => processesUnder(slow).length > 0;
      try {
        // Connected, agent loaded, and now in the (slow) upload: the moment a kill is most costly.
        await waitFor("the transport to reach its upload", upload, 10);
        expect(masters(), stderr).toHaveLength(1);
        child.kill("SIGKILL");
        await waitFor(
          "the killed transport's connection master and work directory to be gone",
          () => masters().length === 0 && readdirSync(tmp).length === 0,
          5,
        );
        expect(masters()).toEqual([]);
        expect(agentsUnder(tmp)).toEqual([]);
        expect(readdirSync(tmp)).toEqual([]);
      } finally {
        // The slow scp the killed shell had started (its own process group, with the shell's).
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    });
  },
  // Several SSH deploys per test.
  scaled(180).ms,
);
