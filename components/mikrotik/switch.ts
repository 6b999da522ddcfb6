/**
 * The office switch (Mikrotik CRS326, RouterOS 7): the cache's VLAN, its DHCP server and DNS,
 * applied over SSH without locking anyone out. Two resources, each a local.Command running the
 * transport (ssh.ts) on a bundle of RouterOS scripts (routeros.ts):
 * - `<name>-switch` checks the switch once (version, SFTP upload) and holds the teardown: its
 *   delete, run last on `pulumi destroy`;
 * - `<name>-apply` runs prepare (refuse an unconfirmed apply, backup, arm the dead-man) → apply →
 *   confirm (over a new connection) as one unit: if any part fails — the dead-man fired, the
 *   confirm could not connect — the resource is not recorded and a plain `pulumi up` runs all of
 *   it again. Its trigger is the bundle's hash: an unchanged stack runs nothing.
 * The earlier `<name>-backup`, `<name>-arm` and `<name>-confirm` steps are now parts of the apply;
 * they had no delete command, so Pulumi dropping them changes nothing on the switch.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { MikrotikConfig } from "../../config/schema";
import { recordArtifact } from "../artifacts";
import { sha256, shellQuote } from "../text";
import {
  applyScript,
  bundle,
  checkScript,
  confirmScript,
  prepareScript,
  switchModel,
  teardownScript,
} from "./routeros";
import { sshWrapperScript } from "./ssh";

export interface SwitchArgs {
  mikrotik: MikrotikConfig;
}

export interface Lease {
  name: string;
  mac: string;
  address: string;
}

export class MikrotikSwitch extends pulumi.ComponentResource {
  /** The switch's address on the cache VLAN: clients' gateway and DNS server. */
  public readonly gateway: pulumi.Output<string>;
  public readonly vlanId: pulumi.Output<number>;
  public readonly leases: pulumi.Output<Lease[]>;
  /** DNS name → address, as the switch answers them. */
  public readonly dnsRecords: pulumi.Output<Record<string, string>>;
  /** The transport's output of the apply, with the marked objects (`export terse`). */
  public readonly applied: pulumi.Output<string>;

  constructor(name: string, args: SwitchArgs, opts?: pulumi.ComponentResourceOptions) {
    super("attic:mikrotik:Switch", name, {}, opts);
    const m = args.mikrotik;
    const child = { parent: this };
    const marker = `attic-infra:${pulumi.getStack()}`;
    const model = switchModel(m, marker);
    const scripts = {
      check: checkScript(marker),
      prepare: prepareScript(model),
      apply: applyScript(model),
      confirm: confirmScript(model),
      teardown: teardownScript(model),
    };
    const wrapper = sshWrapperScript();
    recordArtifact("mikrotik/ssh-wrapper.sh", wrapper);
    recordArtifact("mikrotik/0-check.rsc", scripts.check);
    recordArtifact("mikrotik/1-prepare.rsc", scripts.prepare);
    recordArtifact("mikrotik/2-apply.rsc", scripts.apply);
    recordArtifact("mikrotik/3-confirm.rsc", scripts.confirm);
    recordArtifact("mikrotik/teardown.rsc", scripts.teardown);

    if (m.insecureIgnoreHostKey) {
      pulumi.log.warn(
        "attic-infra:mikrotik.insecureIgnoreHostKey is true: the switch's SSH key is not checked. Pin it with mikrotik.hostKey.",
        this,
      );
    }
    if (m.ownBridge) {
      pulumi.log.warn(
        `attic-infra:mikrotik.ownBridge is true: ${m.bridge} is a second bridge, and a CRS3xx offloads only one bridge per switch chip — the cache VLAN is switched by the CPU. Leave ownBridge unset to use the switch's offloaded bridge.`,
        this,
      );
    }
    const environment = pulumi.secret({
      ROUTEROS_HOST: m.host,
      ROUTEROS_PORT: String(m.port),
      ROUTEROS_USER: m.user,
      ROUTEROS_HOST_KEY: m.hostKey ?? "",
      ROUTEROS_PRIVATE_KEY: m.privateKey ?? "",
      ROUTEROS_PASSWORD: m.password ?? "",
    });
    const run = { create: wrapper, environment, interpreter: ["/bin/sh", "-c"] };

    // Never replaced (no triggers): its delete is the teardown, run last on `pulumi destroy`. The
    // delete shares the create's stdin, so it feeds the teardown bundle to the wrapper itself.
    const holder = new command.local.Command(
      `${name}-switch`,
      {
        ...run,
        stdin: bundle([{ name: "check", script: scripts.check }]),
        delete: `printf '%s' ${shellQuote(bundle([{ name: "teardown", script: scripts.teardown }]))} | /bin/sh -c ${shellQuote(wrapper)}`,
      },
      child,
    );
    const sequence = bundle([
      { name: "prepare", script: scripts.prepare },
      { name: "apply", script: scripts.apply },
      { name: "confirm", script: scripts.confirm, newConnection: true },
    ]);
    const applied = new command.local.Command(
      `${name}-apply`,
      { ...run, stdin: sequence, triggers: [sha256(sequence)] },
      { ...child, dependsOn: [holder] },
    );

    this.gateway = pulumi.output(m.address.split("/")[0]!);
    this.vlanId = pulumi.output(m.vlanId);
    this.leases = pulumi.output(m.dhcp.leases.map((l) => ({ name: l.name, mac: l.mac, address: l.address })));
    this.dnsRecords = pulumi.output(Object.fromEntries(m.dns.records.map((r) => [r.name, r.address])));
    this.applied = applied.stdout;
    this.registerOutputs({ gateway: this.gateway, vlanId: this.vlanId });
  }
}
