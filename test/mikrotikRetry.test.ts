/**
 * The switch over time, against the RouterOS-subset stand-in behind sshd: the dead-man switch
 * firing, `pulumi up` again after it (one unit of retry), an earlier apply left armed, and the
 * teardown restoring the switch as it was before the first apply.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { applyScript, bundle, prepareScript, switchModel } from "../components/mikrotik/routeros";
import { loadConfig } from "../config/load";
import type { MikrotikConfig } from "../config/schema";
import type { Item } from "./support/fakeRouteros";
import { FakeSwitch, SFTP_SERVER } from "./support/fakeSwitch";
import { exampleConfig } from "./support/stacks";
import { scaled } from "./support/timeScale";
import { haveTool } from "./support/tools";

const M = "attic-infra:office";
const mikrotik = (): MikrotikConfig => loadConfig(exampleConfig("office")).config.mikrotik!;
const model = switchModel(mikrotik(), M);
const ours = (items: Item[]) => items.filter((i) => i.props.comment === M);

describe.skipIf(!(haveTool("/usr/sbin/sshd") && haveTool("ssh") && haveTool(SFTP_SERVER)))(
  "the switch over time (RouterOS stand-in behind sshd)",
  () => {
    let sw: FakeSwitch;
    beforeAll(async () => {
      sw = await FakeSwitch.start();
    });
    afterAll(() => sw?.stop());
    beforeEach(() => sw.reset());

    /** An apply whose confirm never reaches the switch (the apply cut the management path). */
    const applyWithoutConfirm = () =>
      sw.run(
        bundle([
          { name: "prepare", script: prepareScript(model) },
          { name: "apply", script: applyScript(model) },
        ]),
      );

    it("the dead-man fires: the switch is back to its backup; a plain deploy then redoes backup → arm → apply → confirm", () => {
      const before = sw.config;
      expect(applyWithoutConfirm().status).toBe(0);
      expect(sw.state.menus["system scheduler"]!.map((e) => e.props.name)).toEqual(["attic-infra-rollback"]);
      sw.fire(); // the first run arms it
      expect(ours(sw.state.menus["interface vlan"]!)).toHaveLength(1);
      sw.fire(); // the second restores the backup and reboots
      expect(sw.config).toEqual(before);
      expect(sw.state.reboots).toBe(1);

      const r = sw.deploy(model);
      expect(r.status, r.stderr).toBe(0);
      expect(ours(sw.state.menus["interface vlan"]!).map((v) => v.props.name)).toEqual(["attic-vlan10"]);
      expect(sw.state.menus["interface bridge"]![0]!.props["vlan-filtering"]).toBe(true);
      expect(sw.state.menus["system scheduler"]).toEqual([]);
      // All four again: a fresh backup, a fresh dead-man, the apply, the confirm.
      expect(r.stdout).toMatch(
        /Configuration backup saved[\s\S]*attic-infra: prepare done[\s\S]*attic-infra: apply done[\s\S]*attic-infra: confirm done/,
      );
    });

    it("a deploy while an earlier apply is still armed: refused with a sentence, the armed rollback left as it is", () => {
      expect(applyWithoutConfirm().status).toBe(0);
      const armed = sw.config;
      const r = sw.deploy(model);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(
        "RouterOS reported an error in prepare: failure: attic-infra: an earlier apply was never confirmed: the scheduler entry attic-infra-rollback is armed and will restore the backup taken before it within 10 minutes. Wait until it has, or, if the switch is as it should be, remove it (/system scheduler remove attic-infra-rollback); then run pulumi up again",
      );
      expect(sw.config).toEqual(armed);
    });

    it("teardown: the switch is as it was before the first apply, its DNS settings and vlan-filtering included", () => {
      sw.change((s) => {
        s.settings["ip dns"] = { servers: "192.168.88.53", "allow-remote-requests": false };
      });
      const before = sw.config;
      expect(sw.deploy(model).status).toBe(0);
      // A later apply with other upstreams must not overwrite what was recorded the first time.
      const m = mikrotik();
      m.dns.upstream = ["8.8.8.8"];
      expect(sw.deploy(switchModel(m, M)).status).toBe(0);
      expect(sw.state.settings["ip dns"]).toEqual({ servers: "8.8.8.8", "allow-remote-requests": true });
      const r = sw.teardown(switchModel(m, M));
      expect(r.status, r.stderr).toBe(0);
      expect(sw.config).toEqual(before);
      expect(sw.files().filter((f) => !/^attic-infra-\d{8}-\d{6}\./.test(f))).toEqual([]);
    });
  },
  // Several SSH deploys per test.
  scaled(180).ms,
);
