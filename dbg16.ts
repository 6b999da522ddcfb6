import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { sshWrapperScript } from "./components/mikrotik/ssh";
import { applyScript, bundle, confirmScript, prepareScript, switchModel } from "./components/mikrotik/routeros";
import { loadConfig } from "./config/load";
import { exampleConfig } from "./test/support/stacks";
import { FakeSwitch } from "./test/support/fakeSwitch";
(async () => {
  const sw = await FakeSwitch.start();
  const model = switchModel(loadConfig(exampleConfig("office")).config.mikrotik!, "attic-infra:office");
  const t = Date.now();
  const r = spawnSync("/bin/sh", ["-c", `PS4='+ $(date +%s.%N | cut -c7-14) '; set -x; ${sshWrapperScript()}`], {
    input: bundle([{ name: "prepare", script: prepareScript(model) }, { name: "apply", script: applyScript(model) }, { name: "confirm", script: confirmScript(model), newConnection: true }]), encoding: "utf8",
    env: { PATH: process.env.PATH, ROUTEROS_HOST: "127.0.0.1", ROUTEROS_PORT: String(sw.sshd.port), ROUTEROS_USER: sw.sshd.user, ROUTEROS_HOST_KEY: sw.sshd.hostPublicKey, ROUTEROS_PRIVATE_KEY: readFileSync(path.join(sw.sshd.dir, "client_key"), "utf8"), ROUTEROS_PASSWORD: "" },
  });
  console.log(Date.now() - t, r.status);
  console.log(r.stderr.split("\n").filter((l) => /^\+ [0-9.]+ (ssh|scp|ssh-agent|ssh-add|awk|sed|mktemp|cat|grep) /.test(l)).map((l) => l.slice(0, 110)).join("\n"));
  sw.stop();
})();
