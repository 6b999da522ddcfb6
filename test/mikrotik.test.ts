/**
 * The switch's RouterOS scripts. What is proven here: the text we generate (golden files reviewed
 * line by line against RouterOS 7 CLI syntax), quoting, ordering, idempotence guards, the error
 * detector on real RouterOS error lines, and the SSH transport — the wrapper really runs OpenSSH
 * against a test sshd whose every command goes to a recording stand-in shell, with the host key
 * pinned, one connection per step, failing on RouterOS error output. What is NOT proven: RouterOS's
 * own semantics (no RouterOS here) — that the switch accepts each line and behaves as intended.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyScript,
  armScript,
  backupScript,
  confirmScript,
  findRouterosError,
  rosQuote,
  switchModel,
  teardownScript,
} from "../components/mikrotik/routeros";
import { sshWrapperScript } from "../components/mikrotik/ssh";
import { shellQuote } from "../components/text";
import { loadConfig } from "../config/load";
import type { MikrotikConfig } from "../config/schema";
import { exampleConfig, ROOT, synthExample } from "./support/stacks";
import { TestSshd } from "./support/sshd";
import { haveTool } from "./support/tools";

const mikrotik = (): MikrotikConfig => loadConfig(exampleConfig("office")).config.mikrotik!;
const model = () => switchModel(mikrotik(), "attic-infra:office");
const golden = (name: string) => readFileSync(path.join(ROOT, "test", "golden", "mikrotik", name), "utf8");

describe("RouterOS scripts of the office example", () => {
  it("apply matches the reviewed golden file", () => {
    expect(applyScript(model())).toBe(golden("apply.rsc"));
  });

  it("teardown matches the reviewed golden file", () => {
    expect(teardownScript(model())).toBe(golden("teardown.rsc"));
  });

  it("synth writes every script under files/mikrotik", async () => {
    const { files } = await synthExample("office");
    expect(Object.keys(files).filter((f) => f.startsWith("mikrotik/"))).toEqual([
      "mikrotik/ssh-wrapper.sh",
      "mikrotik/0-check.rsc",
      "mikrotik/1-backup.rsc",
      "mikrotik/2-arm.rsc",
      "mikrotik/3-apply.rsc",
      "mikrotik/4-confirm.rsc",
      "mikrotik/teardown.rsc",
    ]);
    expect(files["mikrotik/3-apply.rsc"]).toBe(golden("apply.rsc"));
  });
});

describe("order", () => {
  // The commands of the apply block (not the header comment, not the export printed after it).
  const lines = () =>
    applyScript(model())
      .split("\n")
      .filter((x) => !x.startsWith("#") && !x.includes(" export terse "));

  it("the bridge starts with vlan-filtering=no; vlan-filtering=yes comes after every port and bridge-vlan entry", () => {
    const l = lines();
    const filteringOn = l.findIndex((x) => x.includes("vlan-filtering=yes"));
    expect(l.filter((x) => x.includes("vlan-filtering=yes"))).toHaveLength(1);
    expect(l.find((x) => x.includes("/interface bridge add"))).toContain("vlan-filtering=no");
    const last = (needle: string) =>
      l.map((x, i) => (x.includes(needle) ? i : -1)).reduce((a, b) => Math.max(a, b));
    for (const needle of [
      "/interface bridge port",
      "/interface bridge vlan",
      "/interface vlan",
      "/ip address",
      "/ip dhcp-server",
      "/ip dns",
    ]) {
      expect(last(needle), needle).toBeLessThan(filteringOn);
    }
  });

  it("follows bridge → ports → bridge vlan → vlan interface + address → pool, dhcp → dns", () => {
    const l = lines();
    const first = (needle: string) => l.findIndex((x) => x.includes(needle));
    const order = [
      "/interface bridge add",
      "/interface bridge port add",
      "/interface bridge vlan add",
      "/interface vlan add",
      "/ip address add",
      "/ip pool add",
      "/ip dhcp-server add",
      "/ip dhcp-server network add",
      "/ip dhcp-server lease add",
      "/ip dns static add",
      "/ip dns set",
    ].map(first);
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it("the bridge is a tagged member of the VLAN, the access ports untagged with the VLAN as pvid", () => {
    const script = applyScript(model());
    expect(script).toContain('tagged="bridge-attic" untagged="ether1,ether2,ether3,ether4"');
    expect(script).toContain('/interface bridge port add interface="ether1" bridge="bridge-attic" pvid=10');
  });

  it("the management port never appears in a bridge port command", () => {
    for (const script of [applyScript(model()), teardownScript(model())]) {
      for (const line of script.split("\n").filter((x) => x.includes("/interface bridge port"))) {
        expect(line).not.toContain("ether24");
      }
      expect(script).not.toContain("ether24");
    }
  });

  it("teardown turns vlan-filtering off first and removes objects in reverse order", () => {
    const l = teardownScript(model())
      .split("\n")
      .filter((x) => !x.startsWith("#"));
    const off = l.findIndex((x) => x.includes("vlan-filtering=no"));
    const removes = l
      .map((x, i) => (x.includes(" remove ") && !x.includes("scheduler") ? i : -1))
      .filter((i) => i >= 0);
    expect(off).toBeLessThan(removes[0]!);
    const menus = l
      .filter((x) => x.includes(" remove ") && !x.includes("scheduler"))
      .map((x) => x.split(" remove ")[0]);
    expect(menus.at(-1)).toBe("/interface bridge");
    expect(menus[0]).toBe("/ip dns static");
  });
});

describe("idempotence and marked objects", () => {
  it("every add is guarded by a find on the object's natural key, and otherwise sets the marked object", () => {
    const adds = applyScript(model())
      .split("\n")
      .filter((x) => / add /.test(x));
    expect(adds.length).toBe(model().objects.length);
    for (const line of adds) {
      expect(line).toMatch(
        /^:if \(\[:len \[\/[a-z -]+ find where .* && comment="attic-infra:office"\]\] = 0\) do=\{\/[a-z -]+ add .*\} else=\{\/[a-z -]+ set \[find where .* && comment="attic-infra:office"\] .*\}$/,
      );
    }
  });

  it("an unmarked object holding a natural key stops the apply instead of being taken over", () => {
    const guards = applyScript(model())
      .split("\n")
      .filter((x) => x.includes('comment!="attic-infra:office"'));
    expect(guards.length).toBe(model().objects.length);
    for (const g of guards)
      expect(g).toMatch(/do=\{:error "failure: attic-infra: .* exists and is not managed by attic-infra/);
  });

  it("teardown removes every kind of object apply creates, and only marked ones", () => {
    const created = new Set(model().objects.map((o) => o.menu));
    const teardown = teardownScript(model());
    const removed = new Set(
      teardown
        .split("\n")
        .filter((x) => x.includes(' remove [find where comment="attic-infra:office"]'))
        .map((x) => x.split(" remove ")[0]),
    );
    expect(removed).toEqual(created);
    for (const line of teardown.split("\n").filter((x) => x.includes(" remove ") && !x.startsWith("#")))
      expect(line).toMatch(/comment="attic-infra:office"\]$/);
  });
});

describe("quoting", () => {
  it('escapes \\, ", $ and ? inside double quotes', () => {
    expect(rosQuote('a"b\\c$d?e')).toBe('"a\\"b\\\\c\\$d\\?e"');
    expect(rosQuote("$(/system reboot)")).toBe('"\\$(/system reboot)"');
  });

  it("refuses control characters", () => {
    for (const bad of ["a\nb", "a\rb", "tab\t", "\u0000", "\u007f"])
      expect(() => rosQuote(bad)).toThrow(/control character/);
  });

  it("a hostile marker (stack name) cannot break out of its string", () => {
    const hostile = 'x" ; /system reboot ; :put "$y?';
    const script = applyScript(switchModel(mikrotik(), hostile));
    expect(script).toContain('comment="x\\" ; /system reboot ; :put \\"\\$y\\?"');
    expect(script).not.toContain('comment="x" ;');
  });

  it("config refuses control characters and quotes in names before any script is written", () => {
    const config = exampleConfig("office");
    const m = JSON.parse(config["attic-infra:mikrotik"]!);
    m.dns.records[0].name = 'attic"lan';
    m.accessPorts[0] = "ether1\n/system reboot";
    config["attic-infra:mikrotik"] = JSON.stringify(m);
    expect(() => loadConfig(config)).toThrow(
      /attic-infra:mikrotik\.accessPorts\[0\]: .* is not a RouterOS interface name/,
    );
    expect(() => loadConfig(config)).toThrow(
      /attic-infra:mikrotik\.dns\.records\[0\]\.name: .* is not a DNS name/,
    );
  });

  it("the dead-man's on-event is one quoted string: its $ and quotes are escaped", () => {
    const arm = armScript("attic-infra:office", "attic-infra-abc", 5);
    expect(arm).toContain(
      'on-event=":global atticInfraArmed; :if (\\$atticInfraArmed = true) do={/system backup load name=\\"attic-infra-abc.backup\\" password=\\"\\"} else={:set atticInfraArmed true}"',
    );
    expect(arm).toContain("interval=5m");
  });
});

describe("RouterOS error detection", () => {
  // Lines as RouterOS 7 prints them (community.routeros and eden3d/ansible-mikrotik-utils).
  const ERRORS = [
    "failure: already have such entry",
    "failure: device already added as bridge port",
    "bad command name frobnicate (line 1 column 1)",
    "syntax error (line 1 column 24)",
    "expected end of command (line 1 column 11)",
    "expected command name (line 3 column 5)",
    "no such item",
    "invalid value for argument address: 10.0.0.300/24",
    "input does not match any value of type... invalid value for argument vlan-ids",
  ];
  const CLEAN = [
    "Flags: X - disabled, R - running",
    ' 0 R name="bridge-attic" mtu=auto actual-mtu=1500 l2mtu=1592',
    "attic-infra: applied",
    "Configuration backup saved",
    "/interface bridge add comment=attic-infra:office name=bridge-attic vlan-filtering=yes",
    "",
  ];

  it("finds each error line, even among clean lines", () => {
    for (const e of ERRORS) expect(findRouterosError([...CLEAN, e, "more"].join("\n"))).toBe(e);
  });

  it("finds nothing in clean output", () => {
    expect(findRouterosError(CLEAN.join("\n"))).toBeUndefined();
    expect(findRouterosError(CLEAN.join("\r\n"))).toBeUndefined();
  });
});

describe.skipIf(!(haveTool("/usr/sbin/sshd") && haveTool("ssh")))(
  "the SSH wrapper against a test sshd",
  () => {
    let sshd: TestSshd;
    let dir: string;
    const m = mikrotik();
    const mod = switchModel(m, "attic-infra:office");

    beforeAll(async () => {
      dir = mkdtempSync(path.join(tmpdir(), "routeros-"));
      // The stand-in "RouterOS shell": records each exec request with its connection, and answers.
      const shell = path.join(dir, "routeros-shell");
      writeFileSync(
        shell,
        `#!/bin/sh
log="${dir}/commands.log"
printf '=== %s\\n%s\\n' "$SSH_CONNECTION" "$SSH_ORIGINAL_COMMAND" >> "$log"
case "$SSH_ORIGINAL_COMMAND" in
  *"/system backup save"*) echo "Configuration backup saved" ;;
  *"/system scheduler add"*) echo "attic-infra: armed" ;;
  *"/interface bridge add"*)
    if [ -e "${dir}/fail-apply" ]; then echo "failure: device already added as bridge port"; else echo "attic-infra: applied"; echo '/interface bridge add comment=attic-infra:office name=bridge-attic vlan-filtering=yes'; fi ;;
  *"/system scheduler remove"*) echo "attic-infra: confirmed; rollback disarmed" ;;
  *) echo "ok" ;;
esac
`,
      );
      chmodSync(shell, 0o755);
      sshd = await TestSshd.start({ forceCommand: shell });
    });
    afterAll(() => sshd?.stop());

    const runStep = (script: string, overrides: Record<string, string> = {}) =>
      spawnSync("/bin/sh", ["-c", sshWrapperScript()], {
        input: script,
        encoding: "utf8",
        env: {
          PATH: process.env.PATH,
          ROUTEROS_HOST: "127.0.0.1",
          ROUTEROS_PORT: String(sshd.port),
          ROUTEROS_USER: sshd.user,
          ROUTEROS_HOST_KEY: sshd.hostPublicKey,
          ROUTEROS_PRIVATE_KEY: readFileSync(path.join(sshd.dir, "client_key"), "utf8"),
          ROUTEROS_PASSWORD: "",
          ...overrides,
        },
      });
    const recorded = () =>
      readFileSync(path.join(dir, "commands.log"), "utf8")
        .split(/^=== /m)
        .filter(Boolean)
        .map((block) => ({
          connection: block.slice(0, block.indexOf("\n")),
          command: block.slice(block.indexOf("\n") + 1),
        }));

    it("backup → arm → apply → confirm: each script verbatim, each over its own connection", () => {
      const steps = [
        backupScript(mod.marker, "attic-infra-abc"),
        armScript(mod.marker, "attic-infra-abc", 5),
        applyScript(mod),
        confirmScript(mod),
      ];
      for (const s of steps) {
        const r = runStep(s);
        expect(r.status, r.stderr).toBe(0);
      }
      const log = recorded();
      expect(log.map((e) => e.command)).toEqual(steps.map((s) => `${s}\n`.replace(/\n\n$/, "\n")));
      expect(new Set(log.map((e) => e.connection)).size).toBe(4);
    });

    it("the apply's output (the export of marked objects) is passed through for drift detection", () => {
      const r = runStep(applyScript(mod));
      expect(r.stdout).toContain(
        "/interface bridge add comment=attic-infra:office name=bridge-attic vlan-filtering=yes",
      );
    });

    it("fails the step quoting the RouterOS error line, although ssh exits 0", () => {
      writeFileSync(path.join(dir, "fail-apply"), "");
      const r = runStep(applyScript(mod));
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(
        "attic-infra: RouterOS reported an error: failure: device already added as bridge port",
      );
    });

    it("refuses a switch whose host key is not the pinned one", () => {
      const other = spawnSync("ssh-keygen", [
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        "",
        "-f",
        path.join(dir, "other"),
      ]);
      expect(other.status).toBe(0);
      const wrongKey = readFileSync(path.join(dir, "other.pub"), "utf8").trim();
      const before = existsSync(path.join(dir, "commands.log")) ? recorded().length : 0;
      const r = runStep(checkLine, { ROUTEROS_HOST_KEY: wrongKey });
      expect(r.status).toBe(1);
      expect(r.stdout + r.stderr).toMatch(
        /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/,
      );
      expect(recorded().length).toBe(before);
    });

    it("never puts the private key on a command line", () => {
      const snapshots = path.join(dir, "ps.log");
      const watcher = spawn("sh", ["-c", `while :; do ps -eo args; done > ${snapshots}`], {
        stdio: "ignore",
      });
      for (let i = 0; i < 3; i++) expect(runStep(checkLine).status).toBe(0);
      watcher.kill();
      const key = readFileSync(path.join(sshd.dir, "client_key"), "utf8").split("\n")[2]!;
      const seen = readFileSync(snapshots, "utf8");
      expect(seen).toContain("ssh -T -p");
      expect(seen).not.toContain(key);
    });
  },
);

const checkLine = "/system resource print\n";

describe("the switch's Pulumi resources (synth)", () => {
  it("check → backup → arm → apply → confirm, triggered by the apply script's hash, with the host key pinned", async () => {
    const r = await synthExample("office", true);
    const steps = r.resources.filter(
      (e) => e.type === "command:local:Command" && e.name.startsWith("mikrotik-"),
    );
    expect(steps.map((e) => e.name)).toEqual([
      "mikrotik-switch",
      "mikrotik-backup",
      "mikrotik-arm",
      "mikrotik-apply",
      "mikrotik-confirm",
    ]);
    const hash = createHash("sha256").update(r.files["mikrotik/3-apply.rsc"]!).digest("hex");
    for (const e of steps.slice(1)) expect(e.inputs.triggers).toEqual([hash]);
    expect(steps[0]!.inputs).not.toHaveProperty("triggers");
    for (let i = 1; i < steps.length; i++) expect(steps[i]!.options.dependsOn).toEqual([steps[i - 1]!.urn]);
    for (const e of steps) {
      expect(e.inputs.create).toBe(r.files["mikrotik/ssh-wrapper.sh"]);
      expect(e.inputs.environment).toMatchObject({
        ROUTEROS_HOST: "192.168.88.1",
        ROUTEROS_PORT: "22",
        ROUTEROS_USER: "admin",
        ROUTEROS_HOST_KEY: mikrotik().hostKey,
      });
    }
    expect(steps[3]!.inputs.stdin).toBe(r.files["mikrotik/3-apply.rsc"]);
    expect(steps[0]!.inputs.delete).toContain(shellQuote(r.files["mikrotik/teardown.rsc"]!));
  });

  it("the environment (with the SSH key or password) is secret", async () => {
    const r = await synthExample("office");
    const apply = r.resources.find((e) => e.name === "mikrotik-apply")!;
    expect(apply.inputs.environment).toBe("[secret]");
  });
});

describe.skipIf(!haveTool("shellcheck"))("the SSH wrapper", () => {
  it("passes shellcheck", () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), "wrapper-")), "wrapper.sh");
    writeFileSync(file, sshWrapperScript());
    const r = spawnSync("shellcheck", ["--shell=sh", "--severity=info", file], { encoding: "utf8" });
    expect(r.stdout).toBe("");
    expect(r.status).toBe(0);
  });
});
