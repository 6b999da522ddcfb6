/**
 * The test sshd's scenarios (test/support/sshd.ts), on which every deploy and switch scenario
 * relies to start from its own host: one server serves a file's scenarios one after another; what
 * a session sees (PATH to its host's stand-ins, ATTIC_TEST_* variables) is bound when its connection
 * authenticates, and a new scenario ends every process of the previous one's sessions. The last
 * test is the flake this replaced: a deploy session cut off in one scenario armed a rollback timer
 * on the next scenario's host ("a rollback timer … is armed … but no deploy is pending"), because
 * the sessions found their stand-ins through one link that each scenario re-pointed.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FakeNixosHost } from "./support/fakeNixosHost";
import { DeployRig, startRigSshd, TIMES } from "./support/nixosDeploy";
import { TestSshd } from "./support/sshd";
import { processesUnder } from "./support/sshKeyChecks";
import { scaled, waitFor } from "./support/timeScale";
import { haveTool } from "./support/tools";

describe.skipIf(!(haveTool("/usr/sbin/sshd") && haveTool("ssh")))("the test sshd's scenarios", () => {
  let sshd: TestSshd;
  let dir: string;
  const clients: ChildProcess[] = [];
  beforeAll(async () => {
    sshd = await TestSshd.start({ kexAlgorithms: "curve25519-sha256" });
    dir = mkdtempSync(path.join(tmpdir(), "ssh-scenarios-"));
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.kill("SIGKILL");
  });
  afterAll(() => sshd.stop());

  const sshArgs = (...more: string[]) => [
    "-p",
    String(sshd.port),
    "-i",
    path.join(sshd.dir, "client_key"),
    "-o",
    `UserKnownHostsFile=${path.join(sshd.dir, "known_hosts")}`,
    "-o",
    "BatchMode=yes",
    "-o",
    "KexAlgorithms=curve25519-sha256",
    ...more,
    `${sshd.user}@127.0.0.1`,
  ];

  it("a session sees the scenario its connection authenticated in: a connection from before a new scenario keeps the old one", async () => {
    sshd.scenario({ env: { ATTIC_TEST_WHICH: "first" } });
    const socket = path.join(dir, "master");
    const master = spawn("ssh", [...sshArgs("-M", "-S", socket, "-N")], { stdio: "ignore" });
    clients.push(master);
    await waitFor(
      "the connection master to be up",
      () => spawnSync("ssh", [...sshArgs("-S", socket, "-O", "check")]).status === 0,
      10,
    );
    sshd.scenario({ env: { ATTIC_TEST_WHICH: "second" } });
    const over = (...more: string[]) =>
      spawnSync("ssh", [...sshArgs(...more), 'echo "$ATTIC_TEST_WHICH"'], { encoding: "utf8" }).stdout.trim();
    expect(over("-S", socket)).toBe("first");
    expect(over("-S", "none")).toBe("second");
  });

  it("a new scenario ends every process of the previous one's sessions, also one whose client is gone", async () => {
    sshd.scenario({});
    const mark = path.join(dir, `left-behind-${Date.now()}`);
    const client = spawn(
      "ssh",
      [...sshArgs(), `touch ${mark}.started; exec sh -c "sleep ${scaled(600).seconds}" ${mark}`],
      {
        stdio: "ignore",
      },
    );
    clients.push(client);
    await waitFor("the remote command to start", () => existsSync(`${mark}.started`), 10);
    client.kill("SIGKILL");
    // The server side runs on without its client, as on a real host.
    expect(processesUnder(mark)).toHaveLength(1);
    sshd.scenario({});
    expect(processesUnder(mark)).toEqual([]);
  });
});

describe.skipIf(!(haveTool("/usr/sbin/sshd") && haveTool("ssh")))(
  "deploy rigs on one sshd: a scenario's sessions never reach the next scenario's host",
  () => {
    let sshd: TestSshd;
    beforeAll(async () => {
      sshd = await startRigSshd();
    });
    afterAll(() => sshd.stop());

    it("a deploy session cut off before it arms its rollback does not arm it on the next scenario's host", async () => {
      const first = await DeployRig.start(await FakeNixosHost.create(), { sshd });
      const release = path.join(mkdtempSync(path.join(tmpdir(), "cut-off-")), "release");
      // A deploy session that arms its timer late (as a slow build would), its client killed before.
      const client = spawn(
        "ssh",
        [
          "-p",
          String(sshd.port),
          "-i",
          path.join(sshd.dir, "client_key"),
          "-o",
          `UserKnownHostsFile=${path.join(sshd.dir, "known_hosts")}`,
          "-o",
          "BatchMode=yes",
          `${sshd.user}@127.0.0.1`,
          `touch ${release}.waiting; while [ ! -e ${release} ]; do sleep 0.05; done; systemd-run --on-active=${TIMES.windowSeconds} --unit=attic-infra-rollback true; touch ${release}.armed`,
        ],
        { stdio: "ignore", detached: true },
      );
      await waitFor("the session to wait", () => existsSync(`${release}.waiting`), 10);
      process.kill(-client.pid!, "SIGKILL");
      const session = processesUnder(release);
      expect(session.length).toBeGreaterThan(0);

      first.stop();
      const second = await DeployRig.start(await FakeNixosHost.create(), { sshd });
      try {
        writeFileSync(release, "");
        // Whatever the cut-off session could still do, it has done once it is gone.
        await waitFor("the cut-off session to be gone", () => processesUnder(release).length === 0, 20);
        expect(second.host.state().timerArmed).toBe(false);
        expect(second.host.calls()).toEqual([]);
      } finally {
        second.stop();
      }
    });
  },
);
