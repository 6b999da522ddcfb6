/**
 * Opt-in: the switch scenarios against a real RouterOS (a test switch or a CHR VM), when
 * ROUTEROS_TEST_HOST is set (docs/mikrotik.md lists the other variables). It CHANGES that device.
 * The switch's own `/export terse` is the state compared: what the stand-in's tests assert through
 * its internals, this asserts through RouterOS itself.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  applyScript,
  bundle,
  confirmScript,
  prepareScript,
  switchModel,
  teardownScript,
} from "../components/mikrotik/routeros";
import { sshWrapperScript } from "../components/mikrotik/ssh";
import { loadConfig } from "../config/load";
import { exampleConfig } from "./support/stacks";
import { scaled } from "./support/timeScale";

const env = process.env;

describe.runIf(env.ROUTEROS_TEST_HOST)("the switch scenarios against a real RouterOS", () => {
  const m = {
    ...loadConfig(exampleConfig("office")).config.mikrotik!,
    managementPort: "ether1",
    accessPorts: ["ether2", "ether3", "ether4", "ether5"],
    bridge: env.ROUTEROS_TEST_BRIDGE ?? "bridge",
    ownBridge: false,
  };
  const model = switchModel(m, "attic-infra:device-test");
  const run = (steps: string) =>
    spawnSync("/bin/sh", ["-c", sshWrapperScript()], {
      input: steps,
      encoding: "utf8",
      timeout: scaled(300).ms,
      env: {
        PATH: env.PATH,
        ...(env.TMPDIR ? { TMPDIR: env.TMPDIR } : {}),
        ROUTEROS_HOST: env.ROUTEROS_TEST_HOST,
        ROUTEROS_PORT: env.ROUTEROS_TEST_PORT ?? "22",
        ROUTEROS_USER: env.ROUTEROS_TEST_USER ?? "admin",
        ROUTEROS_HOST_KEY: env.ROUTEROS_TEST_HOST_KEY ?? "",
        ROUTEROS_PRIVATE_KEY: env.ROUTEROS_TEST_PRIVATE_KEY ?? "",
        ROUTEROS_PASSWORD: env.ROUTEROS_TEST_PASSWORD ?? "",
      },
    });
  /** The device's configuration as it exports it, without the dated header. */
  const exported = () => {
    const r = run(
      bundle([{ name: "snapshot", script: '/export terse\n:put "attic-infra: snapshot done"\n' }]),
    );
    expect(r.status, r.stderr).toBe(0);
    return r.stdout.split("\n").filter((l) => l.startsWith("/"));
  };
  const deploy = () =>
    run(
      bundle([
        { name: "prepare", script: prepareScript(model) },
        { name: "apply", script: applyScript(model) },
        { name: "confirm", script: confirmScript(model), newConnection: true },
      ]),
    );

  /** A script of the test's own, through the same transport. */
  const script = (name: string, lines: string) => {
    const r = run(bundle([{ name, script: `${lines}\n:put "attic-infra: ${name} done"\n` }]));
    expect(r.status, r.stdout + r.stderr).toBe(0);
  };

  it("an object of someone else's in the way: refused with its sentence, the device unchanged", () => {
    script("setup", '/ip pool add name="attic-pool" ranges=10.9.9.1-10.9.9.9');
    try {
      const before = exported();
      const r = deploy();
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(
        "failure: attic-infra: ip pool attic-pool exists and is not managed by attic-infra",
      );
      expect(exported()).toEqual(before);
    } finally {
      script("cleanup", '/ip pool remove [find where name="attic-pool" && comment=""]');
    }
  });

  it("apply → apply again changes nothing → teardown restores the export from before the first apply", () => {
    const before = exported();
    const first = deploy();
    expect(first.status, first.stdout + first.stderr).toBe(0);
    const applied = exported();
    expect(
      applied.some(
        (l) =>
          l.includes('comment="attic-infra:device-test"') || l.includes("comment=attic-infra:device-test"),
      ),
    ).toBe(true);
    const second = deploy();
    expect(second.status, second.stdout + second.stderr).toBe(0);
    expect(exported()).toEqual(applied);
    const down = run(bundle([{ name: "teardown", script: teardownScript(model) }]));
    expect(down.status, down.stdout + down.stderr).toBe(0);
    expect(exported()).toEqual(before);
  });
});
