/**
 * The vps site: atticd on a public NixOS host (a VPS such as Hetzner) behind a TLS proxy, deployed
 * by the shared NixOS host deployer (components/nixosHost) like the office host. After the host
 * confirmed the deploy, one step waits (bounded) for the Let's Encrypt certificate; the caches are
 * created through https://<domain>/ once it answers.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type * as tls from "@pulumi/tls";
import type { AtticConfig } from "../../config/schema";
import type { VpsConfig } from "../../config/vps";
import { ENVIRONMENT_FILE, environmentFile, removedModule, SQLITE_DATABASE } from "../../nixos/shared";
import { recordArtifact } from "../artifacts";
import { cacheSiteOutputs, type VpsOutputs, type Outputs } from "../outputs";
import { AtticServer } from "../attic/server";
import { type AtticSettings, renderToml } from "../attic/settings";
import { type DeployTimes, hostConnection, NixosHost, type ServiceSpec } from "../nixosHost/host";
import { vpsModule } from "../../nixos/vps";
import { certificateWaitScript, vpsListen, vpsModuleOptions } from "./module";

export interface VpsSiteArgs {
  attic: AtticConfig;
  vps: VpsConfig;
  signingKey: tls.PrivateKey;
}

/** The deployer's time limits, as configured (the window covers the budget: config/nixosDeploy.ts). */
export function vpsDeployTimes(vps: VpsConfig): DeployTimes {
  return {
    buildSeconds: vps.buildTimeoutSeconds,
    activationSeconds: vps.activationTimeoutSeconds,
    healthSeconds: vps.healthTimeoutSeconds,
    windowSeconds: vps.rollbackTimeoutSeconds,
  };
}

/**
 * What the deployer runs and checks: atticd, its environment file, the SQLite file it may migrate
 * (restored on rollback; PostgreSQL is not snapshotted by the deployer, see docs/vps.md), and a
 * health check on loopback that sends the domain as Host: atticd's allowed-hosts answers any other
 * Host with 400 "Bad Host", and every deploy would roll back.
 */
export function vpsServiceSpec(vps: VpsConfig): ServiceSpec {
  return {
    units: ["atticd.service"],
    environmentFile: ENVIRONMENT_FILE,
    ...(vps.database === "sqlite" ? { database: SQLITE_DATABASE } : {}),
    healthUrl: `http://${vpsListen(vps)}/`,
    healthHost: vps.domain,
  };
}

export class VpsSite extends pulumi.ComponentResource {
  public readonly settings: AtticSettings;
  /** This site's stack outputs (components/outputs.ts). */
  public readonly outputs: Outputs<VpsOutputs>;

  constructor(name: string, args: VpsSiteArgs, opts?: pulumi.ComponentResourceOptions) {
    super("attic:vps:Site", name, {}, opts);
    const { attic, vps } = args;
    const stack = pulumi.getStack();
    const options = vpsModuleOptions(attic, vps, stack);
    this.settings = options.settings;
    const module = vpsModule(options);
    const env = pulumi.secret(
      args.signingKey.privateKeyPem.apply((pem) => environmentFile(pem, vps.storage)),
    );

    const connection = hostConnection("vps", vps, this);
    const host = new NixosHost(
      `${name}-nixos`,
      {
        connection,
        ...(vps.flake ? { flake: vps.flake } : {}),
        module,
        environmentFile: env,
        service: vpsServiceSpec(vps),
        times: vpsDeployTimes(vps),
        removedModule: removedModule(stack),
        artifactPrefix: "vps",
      },
      { parent: this },
    );

    const certificate = certificateWaitScript({
      domain: vps.domain,
      proxy: vps.proxy,
      waitSeconds: vps.certificateWaitSeconds,
    });
    recordArtifact("vps/atticd-monolithic.toml", renderToml(this.settings));
    recordArtifact("vps/scripts/certificate.sh", certificate);
    // A certificate that is late is no reason to roll atticd back: this runs after the confirm, and
    // a failure here leaves it to the next `pulumi up`.
    const certified = new command.remote.Command(
      `${name}-certificate`,
      {
        // pulumi-command's own fields, by name: it refuses any other ("Unrecognized field").
        connection: {
          host: connection.host,
          port: connection.port,
          user: connection.user,
          hostKey: connection.hostKey,
          privateKey: connection.privateKey,
          dialErrorLimit: 10,
          perDialTimeout: 15,
        },
        // curl needs no privileges.
        create: certificate,
        triggers: [host.deployId],
      },
      { parent: this, dependsOn: [host.deployed] },
    );

    const server = new AtticServer(
      `${name}-attic`,
      {
        attic,
        apiEndpoint: options.settings["api-endpoint"],
        signingKey: args.signingKey,
        // The certificate step waited on the host; DNS may still take a moment to reach this machine.
        waitSeconds: vps.certificateWaitSeconds + 120,
        dependsOn: [certified],
      },
      { parent: this },
    );
    this.outputs = { ...cacheSiteOutputs(server), modulePath: pulumi.output(host.modulePath) };
    this.registerOutputs({ endpoint: this.outputs.endpoint, modulePath: this.outputs.modulePath });
  }
}
