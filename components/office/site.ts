/**
 * The office site: atticd on a NixOS host on the office LAN (monolithic, SQLite, local or
 * S3-compatible storage), from a generated `services.atticd` module. It is a configuration of the
 * NixOS host deployer (components/nixosHost): the module, the environment file, the health check
 * and the time budget; the deployer stages, activates, confirms or rolls back.
 */
import * as pulumi from "@pulumi/pulumi";
import type * as tls from "@pulumi/tls";
import type { AtticConfig } from "../../config/attic";
import type { OfficeConfig } from "../../config/office";
import { officeModule } from "../../nixos/office";
import { ENVIRONMENT_FILE, environmentFile, removedModule, SQLITE_DATABASE } from "../../nixos/shared";
import { recordArtifact } from "../artifacts";
import { cacheSiteOutputs, type OfficeOutputs, type Outputs } from "../outputs";
import { type AtticSettings, atticSettings, renderToml, storageSettings } from "../attic/settings";
import { AtticServer } from "../attic/server";
import { hostConnection, NixosHost } from "../nixosHost/host";

export interface OfficeSiteArgs {
  attic: AtticConfig;
  office: OfficeConfig;
  signingKey: tls.PrivateKey;
  /** What the host needs first: with the mikrotik site in the stack, the switch (its VLAN, DHCP, DNS). */
  dependsOn?: pulumi.Resource[];
}

/** `[::]:8080` → port 8080, checked on loopback; a specific address is checked on itself. */
export function listenFacts(listen: string): { port: number; healthUrl: string } {
  const port = Number(listen.slice(listen.lastIndexOf(":") + 1));
  const host = listen.slice(0, listen.lastIndexOf(":"));
  const target = host === "[::]" || host === "0.0.0.0" ? "127.0.0.1" : host;
  return { port, healthUrl: `http://${target}:${port}/` };
}

export class OfficeSite extends pulumi.ComponentResource {
  public readonly settings: AtticSettings;
  /** This site's stack outputs (components/outputs.ts). */
  public readonly outputs: Outputs<OfficeOutputs>;

  constructor(name: string, args: OfficeSiteArgs, opts?: pulumi.ComponentResourceOptions) {
    super("attic:office:Site", name, {}, opts);
    const { attic, office } = args;
    const stack = pulumi.getStack();
    const { port, healthUrl } = listenFacts(office.listen);

    this.settings = atticSettings(attic, {
      kind: "office",
      apiEndpoint: office.apiEndpoint,
      listen: office.listen,
      storage: storageSettings(office.storage),
    });
    const module = officeModule({
      settings: this.settings,
      port,
      openFirewall: office.openFirewall,
      ...(office.storage.type === "local" && office.storage.device
        ? { storageDevice: office.storage.device }
        : {}),
      backup: office.backup,
      stack,
    });
    recordArtifact("office/atticd-monolithic.toml", renderToml(this.settings));

    // The host's resources were this site's own children before the deployer existed: they keep
    // their URNs (formerParent), so upgrading replaces nothing (a replaced office-host would run
    // its delete, the teardown).
    const host = new NixosHost(
      name,
      {
        connection: hostConnection("office", office, this),
        ...(office.flake ? { flake: office.flake } : {}),
        module,
        environmentFile: pulumi.secret(
          args.signingKey.privateKeyPem.apply((pem) => environmentFile(pem, office.storage)),
        ),
        service: {
          units: ["atticd.service"],
          environmentFile: ENVIRONMENT_FILE,
          database: SQLITE_DATABASE,
          healthUrl,
        },
        times: {
          buildSeconds: office.buildTimeoutSeconds,
          activationSeconds: office.activationTimeoutSeconds,
          healthSeconds: office.healthTimeoutSeconds,
          windowSeconds: office.rollbackTimeoutSeconds,
        },
        removedModule: removedModule(stack),
        ...(args.dependsOn ? { dependsOn: args.dependsOn } : {}),
        artifactPrefix: "office",
        formerParent: this,
      },
      { parent: this },
    );

    const server = new AtticServer(
      `${name}-attic`,
      {
        attic,
        apiEndpoint: office.apiEndpoint,
        signingKey: args.signingKey,
        waitSeconds: 300,
        dependsOn: [host.deployed],
      },
      { parent: this },
    );
    this.outputs = { ...cacheSiteOutputs(server), modulePath: pulumi.output(host.modulePath) };
    this.registerOutputs({ endpoint: this.outputs.endpoint, modulePath: this.outputs.modulePath });
  }
}
