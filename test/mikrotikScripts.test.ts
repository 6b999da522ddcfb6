/**
 * What the apply and teardown scripts do to a switch, on the RouterOS-subset stand-in in process:
 * each step imported as the transport imports it (support/fakeSwitch.ts LocalSwitch), the stand-in's
 * state asserted. The transport itself — upload, /import over SSH, the done line, the version and
 * ftp gates, the dead-man and retries end to end — is tested behind sshd in mikrotikSwitch.test.ts
 * and mikrotikRetry.test.ts.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { switchModel } from "../components/mikrotik/routeros";
import { loadConfig } from "../config/load";
import type { MikrotikConfig } from "../config/schema";
import type { Item } from "./support/fakeRouteros";
import { LocalSwitch } from "./support/fakeSwitch";
import { exampleConfig } from "./support/stacks";

const M = "attic-infra:office";
const mikrotik = (): MikrotikConfig => loadConfig(exampleConfig("office")).config.mikrotik!;
const model = switchModel(mikrotik(), M);
const ours = (items: Item[]) => items.filter((i) => i.props.comment === M);

describe("the scripts on the RouterOS stand-in", () => {
  const sw = LocalSwitch.create();
  beforeEach(() => sw.reset());

  it("apply twice: the second changes nothing, and vlan-filtering is not toggled (no switch-chip reset); DNS rules stay ahead of an existing drop-all", () => {
    sw.change((s) => {
      s.menus["ip firewall filter"]!.push({
        id: "*F00",
        dynamic: false,
        props: { chain: "input", action: "drop" },
      });
    });
    expect(sw.deploy(model).ok).toBe(true);
    const first = sw.state;
    expect(sw.deploy(model).ok).toBe(true);
    expect(sw.config).toEqual({ menus: first.menus, settings: first.settings });
    expect(sw.state.chipResets).toBe(1);
    expect(sw.state.menus["ip firewall filter"]!.map((f) => f.props.comment ?? "theirs")).toEqual([
      M,
      M,
      M,
      M,
      "theirs",
    ]);
  });

  it("a dynamic DHCP lease for a configured MAC and a dynamic bridge VLAN entry for the PVID do not stop the apply; the lease is made static", () => {
    sw.change((s) => {
      // Someone else's port already on the VLAN: RouterOS shows a dynamic VLAN 10 entry for it.
      const port = s.menus["interface bridge port"]!.find((p) => p.props.interface === "ether5")!;
      port.props.pvid = 10;
      s.menus["ip dhcp-server lease"]!.push({
        id: "*L1",
        dynamic: true,
        props: { "mac-address": "AA:BB:CC:DD:EE:01", address: "192.168.88.254", server: "defconf" },
      });
    });
    expect(
      sw
        .router()
        .items("interface bridge vlan")
        .filter((v) => v.dynamic && v.props["vlan-ids"] === 10),
    ).toHaveLength(1);
    const r = sw.deploy(model);
    expect(r.ok, r.output.join("\n")).toBe(true);
    const leases = sw.state.menus["ip dhcp-server lease"]!;
    expect(leases.map((l) => [l.id, l.dynamic, l.props.address, l.props.server, l.props.comment])).toEqual([
      ["*L1", false, "10.0.0.10", "attic-dhcp", M],
    ]);
  });

  it("a port still in someone else's bridge: refused with a sentence naming it and the command that clears it", () => {
    sw.reset({ freePorts: ["ether2", "ether3", "ether4"] });
    const before = sw.config;
    const r = sw.deploy(model);
    expect(r.failed?.step).toBe("apply");
    expect(r.failed?.line).toBe(
      "failure: attic-infra: bridge port ether1 exists and is not managed by attic-infra; take it out of its bridge: /interface bridge port remove [find where interface=ether1], then run pulumi up again",
    );
    expect(sw.config).toEqual(before);
  });

  it("an object of someone else's in the way of the last object: refused before any change, the dead-man disarmed", () => {
    sw.change((s) => {
      s.menus["ip dns static"]!.push({
        id: "*D1",
        dynamic: false,
        props: { name: "attic.lan", address: "10.9.9.9", type: "A" },
      });
    });
    const before = sw.config;
    const r = sw.deploy(model);
    expect(r.failed?.step).toBe("apply");
    expect(r.failed?.line).toBe(
      "failure: attic-infra: dns record attic.lan exists and is not managed by attic-infra; remove it, then run pulumi up again",
    );
    // No port, VLAN or DHCP object was added before the refusal, and no rollback is left armed.
    expect(sw.config).toEqual(before);
  });

  it("a management port that would lose its path to the CPU under vlan-filtering: refused before any change", () => {
    sw.change((s) => {
      s.menus["interface bridge port"]!.find((p) => p.props.interface === "ether24")!.props.pvid = 99;
    });
    const before = sw.config;
    const r = sw.deploy(model);
    expect(r.failed?.step).toBe("apply");
    expect(r.failed?.line).toContain(
      "failure: attic-infra: turning vlan-filtering on on bridge would cut the management path",
    );
    expect(sw.config).toEqual(before);
  });

  it("items removed from the config are removed from the switch; the rest stays as it was", () => {
    expect(sw.deploy(model).ok).toBe(true);
    const full = sw.state;
    const m = mikrotik();
    m.accessPorts = ["ether1", "ether2"];
    m.dhcp.leases = [];
    m.dns.records = [];
    const r = sw.deploy(switchModel(m, M));
    expect(r.ok, r.output.join("\n")).toBe(true);
    const s = sw.state;
    expect(ours(s.menus["interface bridge port"]!).map((p) => p.props.interface)).toEqual([
      "ether1",
      "ether2",
    ]);
    expect(ours(s.menus["interface bridge vlan"]!).map((v) => v.props.untagged)).toEqual(["ether1,ether2"]);
    expect(ours(s.menus["ip dhcp-server lease"]!)).toEqual([]);
    expect(ours(s.menus["ip dns static"]!)).toEqual([]);
    for (const menu of ["interface vlan", "ip address", "ip pool", "ip dhcp-server", "ip firewall filter"])
      expect(s.menus[menu], menu).toEqual(full.menus[menu]);
  });

  it("an own bridge (ownBridge: true) is a second bridge: its ports are not hardware-offloaded", () => {
    const m = mikrotik();
    m.ownBridge = true;
    m.bridge = "bridge-attic";
    const r = sw.deploy(switchModel(m, M));
    expect(r.ok, r.output.join("\n")).toBe(true);
    const router = sw.router();
    const ports = ours(sw.state.menus["interface bridge port"]!);
    expect(ports.map((p) => [p.props.bridge, router.prop("interface bridge port", p, "hw-offload")])).toEqual(
      ["ether1", "ether2", "ether3", "ether4"].map(() => ["bridge-attic", false]),
    );
    expect(sw.teardown(switchModel(m, M)).ok).toBe(true);
    expect(sw.state.menus["interface bridge"]!.map((b) => b.props.name)).toEqual(["bridge"]);
  });

  it("a bridge that already filters VLANs: never toggled, neither by the apply nor by the teardown", () => {
    sw.change((s) => {
      s.menus["interface bridge"]![0]!.props["vlan-filtering"] = true;
    });
    const before = sw.config;
    expect(sw.deploy(model).ok).toBe(true);
    expect(sw.state.menus["system script"]).toEqual([]);
    expect(sw.teardown(model).ok).toBe(true);
    expect(sw.config).toEqual(before);
    expect(sw.state.chipResets).toBe(0);
  });

  it("a new vlanId: the old VLAN's entry, interface, address and DNS rules go, the new ones come, once", () => {
    expect(sw.deploy(model).ok).toBe(true);
    const m = mikrotik();
    m.vlanId = 20;
    const r = sw.deploy(switchModel(m, M));
    expect(r.ok, r.output.join("\n")).toBe(true);
    const s = sw.state;
    expect(ours(s.menus["interface bridge vlan"]!).map((v) => v.props["vlan-ids"])).toEqual([20]);
    expect(ours(s.menus["interface vlan"]!).map((v) => v.props.name)).toEqual(["attic-vlan20"]);
    expect(ours(s.menus["ip address"]!).map((a) => a.props.interface)).toEqual(["attic-vlan20"]);
    expect(ours(s.menus["interface bridge port"]!).map((p) => p.props.pvid)).toEqual([20, 20, 20, 20]);
    expect(s.menus["ip firewall filter"]!.map((f) => f.props["in-interface"] ?? "any")).toEqual([
      "attic-vlan20",
      "attic-vlan20",
      "any",
      "any",
    ]);
    expect(ours(s.menus["ip dhcp-server"]!).map((d) => d.props.interface)).toEqual(["attic-vlan20"]);
  });

  it("a dynamic lease from another server for a MAC that already has our static lease is left alone", () => {
    expect(sw.deploy(model).ok).toBe(true);
    sw.change((s) => {
      s.menus["ip dhcp-server lease"]!.push({
        id: "*L9",
        dynamic: true,
        props: { "mac-address": "AA:BB:CC:DD:EE:01", address: "192.168.88.254", server: "defconf" },
      });
    });
    expect(sw.deploy(model).ok).toBe(true);
    const leases = sw.state.menus["ip dhcp-server lease"]!;
    expect(leases.map((l) => [l.dynamic, l.props.comment ?? "", l.props.server])).toEqual([
      [false, M, "attic-dhcp"],
      [true, "", "defconf"],
    ]);
  });

  it("mikrotik.bridge naming no bridge on the switch: refused with a sentence saying what to set", () => {
    const m = mikrotik();
    m.bridge = "bridge1";
    const before = sw.config;
    const r = sw.deploy(switchModel(m, M));
    expect(r.failed).toEqual({
      step: "apply",
      line: "failure: attic-infra: the switch has no bridge bridge1; set attic-infra:mikrotik.bridge to its hardware-offloaded bridge (/interface bridge port print shows it: the ports flagged H)",
    });
    expect(sw.config).toEqual(before);
  });
});
