/**
 * A NixOS host deployer: puts one generated NixOS module (and one secret environment file) on a
 * NixOS host over SSH, with a dead-man rollback, so that a deploy that breaks the host undoes
 * itself. Sites (the office, a public VPS) configure it; the scripts are in scripts.ts, the
 * deploying machine's side in driver.ts.
 *
 * Two resources:
 *   <name>-host    remote.Command, never replaced (no triggers): checks the host; its delete is the
 *                  teardown, so it runs on `pulumi destroy` only, after every dependent is gone.
 *   <name>-deploy  local.Command whose create runs the whole deploy with OpenSSH from the deploying
 *                  machine: stage → build → arm → activate → health, then confirm over a new
 *                  connection. Replaced (triggers) when the module or the environment file
 *                  changes; it has no delete. One resource is Pulumi's unit of retry: after any
 *                  failure the next `pulumi up` runs the whole deploy again, and the host side
 *                  resumes, rolls back or refuses with a sentence (scripts.ts).
 *
 * A site configures it (components/office/site.ts is the full example):
 *
 *   const host = new NixosHost("vps", {
 *     connection: { host: "203.0.113.7", hostKey: "ssh-ed25519 AAAA...", privateKey },
 *     module,                                  // Nix text, nothing secret
 *     environmentFile: pulumi.secret(envText), // reaches the host on stdin only
 *     service: { units: ["atticd.service"], environmentFile: ENVIRONMENT_FILE,
 *                database: SQLITE_DATABASE, healthUrl: "http://127.0.0.1:8080/" },
 *     times: { buildSeconds: 1800, activationSeconds: 90, healthSeconds: 30, windowSeconds: 180 },
 *     removedModule: removedModule(stack),
 *     artifactPrefix: "vps",
 *   }, { parent: this });
 *   // anything that needs the deployed host: { dependsOn: [host.deployed] }
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { windowShortfall } from "../../config/deployBudget";
import { recordArtifact } from "../artifacts";
import { sha256 } from "../text";
import { driverScript } from "./driver";
import {
  asRoot,
  confirmScript,
  type DeployTimes,
  defaultPaths,
  deployScript,
  type HostPaths,
  MODULE_REL_PATH,
  preflightScript,
  rollbackScript,
  type ServiceSpec,
  teardownScript,
} from "./scripts";

export type { DeployTimes, HostPaths, ServiceSpec } from "./scripts";

/** The deploy id: changes when the module or the environment file changes. */
export function deployId(module: string, environmentFile: string): string {
  return sha256(`${sha256(module)}\n${sha256(environmentFile)}`).slice(0, 32);
}

export interface NixosHostConnection {
  host: string;
  /** Default 22. */
  port?: number;
  /** root, or a user with passwordless sudo. Default root. */
  user?: string;
  /** The host's public key (`ssh-ed25519 AAAA...`). Unset: any key is accepted (warned about). */
  hostKey?: string;
  /** Secret. Unset: the SSH agent of the deploying machine. */
  privateKey?: pulumi.Input<string>;
  /** Where the user set privateKey (attic-infra:office.privateKey), named when it cannot be loaded. */
  privateKeySetting?: string;
}

/**
 * The connection a site's config block describes (attic-infra:<block>.host, port, user, hostKey,
 * privateKey). A block that waives the host key check gets a warning on `warnOn`.
 */
export function hostConnection(
  block: string,
  c: {
    host: string;
    port: number;
    user: string;
    hostKey?: string | undefined;
    privateKey?: string | undefined;
    insecureIgnoreHostKey: boolean;
  },
  warnOn: pulumi.Resource,
): NixosHostConnection {
  if (c.insecureIgnoreHostKey) {
    pulumi.log.warn(
      `attic-infra:${block}.insecureIgnoreHostKey is true: the host's SSH key is not checked. Pin it with ${block}.hostKey.`,
      warnOn,
    );
  }
  return {
    host: c.host,
    port: c.port,
    user: c.user,
    ...(c.hostKey ? { hostKey: c.hostKey } : {}),
    ...(c.privateKey ? { privateKey: pulumi.secret(c.privateKey) } : {}),
    privateKeySetting: `attic-infra:${block}.privateKey`,
  };
}

export interface NixosHostArgs {
  connection: NixosHostConnection;
  /** `<flake dir>#<host>` for flake hosts. Unset: /etc/nixos/configuration.nix. */
  flake?: string;
  /** The NixOS module text (lands in the world-readable store: nothing secret). */
  module: string;
  /** The environment file's content (secret; reaches the host on stdin only). */
  environmentFile: pulumi.Input<string>;
  /** The units, environment file path, database and health check of what the module runs. */
  service: ServiceSpec;
  /** Limits; windowSeconds must cover the budget (config/deployBudget.ts), checked here too. */
  times: DeployTimes;
  /** What the module becomes on delete (an empty module, so the host's import stays valid). */
  removedModule: string;
  /** Resources the host needs first (e.g. the switch that gives it its network). */
  dependsOn?: pulumi.Resource[];
  /** Where the synth writes the scripts (e.g. "office"). */
  artifactPrefix: string;
  /**
   * For a site whose resources predate this component: the resource they were children of. The
   * children keep their URNs (aliases), so an upgrade replaces nothing.
   */
  formerParent?: pulumi.Resource;
}

export class NixosHost extends pulumi.ComponentResource {
  /** The deploy id the host runs once this deploy succeeds. */
  public readonly deployId: pulumi.Output<string>;
  /** Completes when the host has confirmed the deploy: depend on it for anything that needs it. */
  public readonly deployed: command.local.Command;
  public readonly paths: HostPaths;
  /** Where the live module is on the host: the path its configuration imports. */
  public readonly modulePath: string;

  constructor(name: string, args: NixosHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("attic:nixos:Host", name, {}, opts);
    const shortfall = windowShortfall(args.times.windowSeconds, args.times);
    if (shortfall) throw new Error(`NixosHost ${name}: the rollback window of ${shortfall}`);
    const paths = (this.paths = defaultPaths(args.flake));
    this.modulePath = `${paths.configDir}/${MODULE_REL_PATH}`;
    const c = args.connection;
    const port = c.port ?? 22;
    const user = c.user ?? "root";
    const child = (suffix: string): pulumi.CustomResourceOptions => ({
      parent: this,
      ...(args.formerParent ? { aliases: [{ name: `${name}-${suffix}`, parent: args.formerParent }] } : {}),
    });

    const env = pulumi.secret(args.environmentFile);
    // The id (a hash) reveals nothing of the environment file; plain, it keeps previews readable.
    const id = pulumi.unsecret(pulumi.output(env).apply((e) => deployId(args.module, e)));
    const flake = args.flake ? { flake: args.flake } : {};
    const rollback = id.apply((d) => rollbackScript({ paths, deployId: d, service: args.service }));
    const deploy = id.apply((d) =>
      deployScript({
        paths,
        ...flake,
        deployId: d,
        module: args.module,
        service: args.service,
        times: args.times,
      }),
    );
    const confirm = id.apply((d) => confirmScript({ paths, ...flake, deployId: d, service: args.service }));
    const driver = pulumi.all([id, deploy, confirm]).apply(([d, dep, con]) =>
      driverScript({
        deployId: d,
        deploy: asRoot(dep),
        confirm: asRoot(con),
        windowSeconds: args.times.windowSeconds,
        ...(c.privateKeySetting ? { privateKeySetting: c.privateKeySetting } : {}),
      }),
    );
    const teardown = teardownScript({
      paths,
      ...flake,
      removedModule: args.removedModule,
      environmentFile: args.service.environmentFile,
      timeoutSeconds: 600,
    });
    const p = args.artifactPrefix;
    recordArtifact(`${p}/atticd.nix`, args.module);
    recordArtifact(`${p}/atticd.env`, env);
    recordArtifact(`${p}/scripts/deploy.sh`, deploy);
    recordArtifact(`${p}/scripts/rollback.sh`, rollback);
    recordArtifact(`${p}/scripts/confirm.sh`, confirm);
    recordArtifact(`${p}/scripts/teardown.sh`, teardown);
    recordArtifact(`${p}/scripts/driver.sh`, driver);

    const connection: command.types.input.remote.ConnectionArgs = {
      host: c.host,
      port,
      user,
      ...(c.hostKey ? { hostKey: c.hostKey } : {}),
      ...(c.privateKey ? { privateKey: pulumi.secret(c.privateKey) } : {}),
      dialErrorLimit: 10,
      perDialTimeout: 15,
    };
    // Never replaced: its delete (the teardown) runs on `pulumi destroy` only.
    const host = new command.remote.Command(
      `${name}-host`,
      { connection, create: asRoot(preflightScript(paths)), delete: asRoot(teardown) },
      { ...child("host"), dependsOn: args.dependsOn ?? [] },
    );
    this.deployed = new command.local.Command(
      `${name}-deploy`,
      {
        create: driver,
        stdin: env,
        interpreter: ["/bin/sh", "-c"],
        environment: pulumi.secret({
          NIXOS_HOST: c.host,
          NIXOS_PORT: String(port),
          NIXOS_USER: user,
          NIXOS_HOST_KEY: c.hostKey ?? "",
          NIXOS_PRIVATE_KEY: c.privateKey ?? "",
        }),
        triggers: [id],
      },
      { parent: this, dependsOn: [host, ...(args.dependsOn ?? [])] },
    );
    this.deployId = id;
    this.registerOutputs({ deployId: id });
  }
}
