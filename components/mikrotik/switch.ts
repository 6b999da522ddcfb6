/**
 * The office switch (Mikrotik CRS326, RouterOS 7): the cache's VLAN, its DHCP server and DNS,
 * applied over SSH without locking anyone out:
 *   check → backup (binary + export) → arm the dead-man scheduler → apply → confirm (new connection)
 * Every step is a local.Command running the SSH wrapper (ssh.ts) with a RouterOS script on stdin.
 * Triggers are the apply script's hash: an unchanged stack runs nothing.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { MikrotikConfig } from "../../config/schema";
import { recordArtifact } from "../artifacts";
import { sha256, shellQuote } from "../text";
import {
  applyScript,
  armScript,
  backupScript,
  checkScript,
  confirmScript,
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
  /** The marked objects as the switch reports them after the apply (`export terse`). */
  public readonly applied: pulumi.Output<string>;

  constructor(name: string, args: SwitchArgs, opts?: pulumi.ComponentResourceOptions) {
    super("attic:mikrotik:Switch", name, {}, opts);
    const m = args.mikrotik;
    const child = { parent: this };
    const marker = `attic-infra:${pulumi.getStack()}`;
    const model = switchModel(m, marker);
    const apply = applyScript(model);
    const hash = sha256(apply);
    const backupName = `attic-infra-${hash.slice(0, 12)}`;
    const scripts = {
      check: checkScript(marker),
      backup: backupScript(marker, backupName),
      arm: armScript(marker, backupName, m.rollbackMinutes),
      apply,
      confirm: confirmScript(model),
      teardown: teardownScript(model),
    };
    const wrapper = sshWrapperScript();
    recordArtifact("mikrotik/ssh-wrapper.sh", wrapper);
    recordArtifact("mikrotik/0-check.rsc", scripts.check);
    recordArtifact("mikrotik/1-backup.rsc", scripts.backup);
    recordArtifact("mikrotik/2-arm.rsc", scripts.arm);
    recordArtifact("mikrotik/3-apply.rsc", scripts.apply);
    recordArtifact("mikrotik/4-confirm.rsc", scripts.confirm);
    recordArtifact("mikrotik/teardown.rsc", scripts.teardown);

    if (m.insecureIgnoreHostKey) {
      pulumi.log.warn(
        "attic-infra:mikrotik.insecureIgnoreHostKey is true: the switch's SSH key is not checked. Pin it with mikrotik.hostKey.",
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
    const step = (
      id: string,
      stdin: string,
      dependsOn: pulumi.Resource[],
      extra: Partial<command.local.CommandArgs> = {},
    ) =>
      new command.local.Command(
        `${name}-${id}`,
        { create: wrapper, stdin, environment, interpreter: ["/bin/sh", "-c"], ...extra },
        { ...child, dependsOn },
      );

    // Never replaced (no triggers): its delete is the teardown, run last on `pulumi destroy`. The
    // delete shares the create's stdin, so it feeds the teardown script to the wrapper itself.
    const holder = step("switch", scripts.check, [], {
      delete: `printf '%s' ${shellQuote(scripts.teardown)} | /bin/sh -c ${shellQuote(wrapper)}`,
    });
    const backup = step("backup", scripts.backup, [holder], { triggers: [hash] });
    const arm = step("arm", scripts.arm, [backup], { triggers: [hash] });
    const applied = step("apply", scripts.apply, [arm], { triggers: [hash] });
    step("confirm", scripts.confirm, [applied], { triggers: [hash] });

    this.gateway = pulumi.output(m.address.split("/")[0]!);
    this.vlanId = pulumi.output(m.vlanId);
    this.leases = pulumi.output(m.dhcp.leases.map((l) => ({ name: l.name, mac: l.mac, address: l.address })));
    this.dnsRecords = pulumi.output(Object.fromEntries(m.dns.records.map((r) => [r.name, r.address])));
    this.applied = applied.stdout;
    this.registerOutputs({ gateway: this.gateway, vlanId: this.vlanId });
  }
}
