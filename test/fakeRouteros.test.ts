/**
 * The RouterOS-subset stand-in's own contract (support/fakeRouteros.ts), in process: the behaviour
 * of RouterOS that the switch tests rely on, each pinned here so a change to the stand-in that
 * would make it kinder than RouterOS fails.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { configOf, defaultState, filesDir, Router, saveState } from "./support/fakeRouteros";

function router(version = "7.16.1 (stable)", group = "full"): Router {
  const dir = mkdtempSync(path.join(tmpdir(), "routeros-contract-"));
  const s = defaultState(version, "admin", group);
  saveState(dir, s);
  return new Router(s, dir);
}
const run = (r: Router, script: string) => {
  r.out = [];
  r.runScript(script);
  return r.out;
};

describe("the RouterOS stand-in", () => {
  it("parses the whole script first: an unknown command or argument runs nothing", () => {
    const r = router();
    expect(run(r, "/ip pool add name=a ranges=1.1.1.1-1.1.1.2\n/ip pool frobnicate")).toEqual([
      "bad command name frobnicate (line 2 column 10)",
    ]);
    expect(run(r, '/ip pool add name=a ranges=1.1.1.1-1.1.1.2 colour="red"')).toEqual([
      "expected end of command (line 1 column 1)",
    ]);
    expect(run(r, "/ip pool add name=a")).toEqual([
      "missing value(s) of argument(s) ranges (line 1 column 1)",
    ]);
    expect(r.s.menus["ip pool"]).toEqual([]);
  });

  it("a runtime error or :error stops the script where it is; what ran stays", () => {
    const r = router();
    expect(
      run(
        r,
        '/ip pool add name=a ranges=1.1.1.1-1.1.1.2\n:error "failure: stop"\n/ip pool add name=b ranges=2.2.2.2-2.2.2.3',
      ),
    ).toEqual(["failure: stop"]);
    expect(r.s.menus["ip pool"]!.map((p) => p.props.name)).toEqual(["a"]);
    expect(run(r, "/interface vlan add name=v interface=nosuch vlan-id=5")).toEqual([
      "input does not match any value of interface",
    ]);
  });

  it("`export … where` is an unknown argument before RouterOS 7.13", () => {
    expect(run(router("7.12.1 (stable)"), '/ip pool export terse where comment="x"')).toEqual([
      "expected end of command (line 1 column 23)",
    ]);
    expect(run(router("7.13"), '/ip pool export terse where comment="x"')).toEqual([]);
  });

  it("RouterOS shows a dynamic bridge VLAN entry for each PVID; it has no comment, so `comment!=` matches it", () => {
    const r = router();
    expect(
      run(
        r,
        ':put [:len [/interface bridge vlan find where comment!="ours"]]; :put [:len [/interface bridge vlan find where dynamic=no]]',
      ),
    ).toEqual(["1", "0"]);
    expect(run(r, "/interface bridge vlan remove [find]")).toEqual(["failure: can not remove dynamic entry"]);
  });

  it("only one bridge is hardware-offloaded: a second bridge's ports are switched by the CPU", () => {
    const r = router();
    run(
      r,
      "/interface bridge port remove [find where interface=ether1]; /interface bridge add name=b2; /interface bridge port add bridge=b2 interface=ether1",
    );
    const port = (i: string) => r.s.menus["interface bridge port"]!.find((p) => p.props.interface === i)!;
    expect(r.prop("interface bridge port", port("ether2"), "hw-offload")).toBe(true);
    expect(r.prop("interface bridge port", port("ether1"), "hw-offload")).toBe(false);
    expect(run(r, "/interface bridge port add bridge=b2 interface=ether2")).toEqual([
      "failure: device already added as bridge port",
    ]);
  });

  it("dynamic leases become static with make-static", () => {
    const r = router();
    r.s.menus["ip dhcp-server lease"]!.push({
      id: "*L",
      dynamic: true,
      props: { "mac-address": "AA:AA:AA:AA:AA:AA", address: "10.0.0.9" },
    });
    run(r, "/ip dhcp-server lease make-static [find where dynamic=yes]");
    expect(r.s.menus["ip dhcp-server lease"]![0]!.dynamic).toBe(false);
  });

  it("/import without verbose runs the file as one script ({} blocks work); verbose=yes runs it line by line", () => {
    const r = router();
    writeFileSync(path.join(filesDir(r.dir), "a.rsc"), '{\n:put "in a block"\n}\n');
    expect(run(r, "/import file-name=a.rsc")).toEqual([
      "in a block",
      "Script file loaded and executed successfully",
    ]);
    expect(run(r, "/import file-name=a.rsc verbose=yes")).toEqual([
      "{",
      "syntax error (line 1 column 2) (line 1)",
      ':put "in a block"',
      "in a block",
      "}",
      "syntax error (line 1 column 1) (line 3)",
    ]);
  });

  it("a group without write gets `not enough permissions`", () => {
    expect(run(router("7.16.1", "read"), "/ip pool add name=a ranges=1.1.1.1-1.1.1.2")).toEqual([
      "not enough permissions (9)",
    ]);
  });

  it("backup load restores the saved configuration, not the files, and reboots (globals are gone)", () => {
    const r = router();
    run(r, '/system backup save name="b" dont-encrypt=yes');
    const saved = configOf(r.s);
    run(r, ':global x 1; /ip pool add name=a ranges=1.1.1.1-1.1.1.2; /ip dns set servers="9.9.9.9"');
    run(r, '/system backup load name="b.backup" password=""');
    expect(configOf(r.s)).toEqual(saved);
    expect(r.s.globals).toEqual({});
    expect(run(r, '/file print where name="b.backup"')).toHaveLength(1);
  });

  it("a line ending in a backslash continues on the next line (the export format)", () => {
    const r = router();
    run(r, "/ip pool add name=a \\\n    ranges=1.1.1.1-1.1.1.2");
    expect(r.s.menus["ip pool"]!.map((p) => p.props.ranges)).toEqual(["1.1.1.1-1.1.1.2"]);
  });
});
