/**
 * The office site: atticd on a NixOS host on the office LAN (monolithic, SQLite, local or
 * S3-compatible storage), from a generated `services.atticd` module applied with `nixos-rebuild`
 * over SSH, with a dead-man rollback (see scripts.ts).
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type * as tls from "@pulumi/tls";
import type { AtticConfig, OfficeConfig } from "../../config/schema";
import { atticdModule } from "../../nixos/atticdModule";
import { recordArtifact } from "../artifacts";
import { type AtticSettings, atticSettings, renderToml, type StorageSettings } from "../attic/settings";
import { AtticServer, type CacheOutput } from "../attic/server";
import { sha256 } from "../text";
import {
  confirmScript,
  defaultPaths,
  deployId,
  preflightScript,
  switchScript,
  teardownScript,
  uploadEnvScript,
  uploadModuleScript,
} from "./scripts";

export interface OfficeSiteArgs {
  attic: AtticConfig;
  office: OfficeConfig;
  signingKey: tls.PrivateKey;
}

export function officeStorageSettings(office: OfficeConfig): StorageSettings {
  const s = office.storage;
  if (s.type === "local") return { type: "local", path: s.path };
  return s.endpoint === undefined
    ? { type: "s3", region: s.region, bucket: s.bucket }
    : { type: "s3", region: s.region, bucket: s.bucket, endpoint: s.endpoint };
}

/** `[::]:8080` → port 8080, checked on loopback; a specific address is checked on itself. */
export function listenFacts(listen: string): { port: number; healthUrl: string } {
  const port = Number(listen.slice(listen.lastIndexOf(":") + 1));
  const host = listen.slice(0, listen.lastIndexOf(":"));
  const target = host === "[::]" || host === "0.0.0.0" ? "127.0.0.1" : host;
  return { port, healthUrl: `http://${target}:${port}/` };
}

/** atticd's environment file: the token signing key and, for S3-compatible storage, its keys. */
export function environmentFile(privateKeyPem: string, office: OfficeConfig): string {
  const lines = [`ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64=${Buffer.from(privateKeyPem).toString("base64")}`];
  if (office.storage.type === "s3" && office.storage.accessKeyId && office.storage.secretAccessKey) {
    lines.push(
      `AWS_ACCESS_KEY_ID=${office.storage.accessKeyId}`,
      `AWS_SECRET_ACCESS_KEY=${office.storage.secretAccessKey}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

export class OfficeSite extends pulumi.ComponentResource {
  public readonly endpoint: pulumi.Output<string>;
  public readonly modulePath: pulumi.Output<string>;
  public readonly settings: AtticSettings;
  public readonly caches: pulumi.Output<Record<string, CacheOutput>>;
  public readonly tokens: pulumi.Output<Record<string, string>>;
  public readonly nixConf: pulumi.Output<string>;
  public readonly netrc: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: OfficeSiteArgs, opts?: pulumi.ComponentResourceOptions) {
    super("attic:office:Site", name, {}, opts);
    const { attic, office } = args;
    const child = { parent: this };
    const stack = pulumi.getStack();
    const { port, healthUrl } = listenFacts(office.listen);
    const paths = defaultPaths(office.flake);

    this.settings = atticSettings(attic, {
      kind: "office",
      apiEndpoint: office.apiEndpoint,
      listen: office.listen,
      storage: officeStorageSettings(office),
    });
    const module = atticdModule({
      settings: this.settings,
      port,
      openFirewall: office.openFirewall,
      ...(office.storage.type === "local" && office.storage.device
        ? { storageDevice: office.storage.device }
        : {}),
      backup: office.backup,
      stack,
    });
    const moduleSha = sha256(module);
    const env = pulumi.secret(args.signingKey.privateKeyPem.apply((pem) => environmentFile(pem, office)));
    // The hash of the environment file reveals nothing of it; keeping it plain keeps the scripts
    // (which embed it) readable in previews.
    const envSha = pulumi.unsecret(env.apply(sha256));
    const id = envSha.apply((e) => deployId(moduleSha, e));

    if (office.insecureIgnoreHostKey) {
      pulumi.log.warn(
        "attic-infra:office.insecureIgnoreHostKey is true: the host's SSH key is not checked. Pin it with office.hostKey.",
        this,
      );
    }
    const connection: command.types.input.remote.ConnectionArgs = {
      host: office.host,
      port: office.port,
      user: office.user,
      ...(office.hostKey ? { hostKey: office.hostKey } : {}),
      ...(office.privateKey ? { privateKey: pulumi.secret(office.privateKey) } : {}),
      dialErrorLimit: 10,
      perDialTimeout: 15,
    };

    const uploadModule = uploadModuleScript(paths);
    const uploadEnv = uploadEnvScript(paths);
    const teardown = teardownScript({
      paths,
      ...(office.flake ? { flake: office.flake } : {}),
      stack,
      timeoutSeconds: 600,
    });
    const switchText = envSha.apply((e) =>
      switchScript({
        paths,
        ...(office.flake ? { flake: office.flake } : {}),
        stack,
        moduleSha256: moduleSha,
        envSha256: e,
        rollbackTimeoutSeconds: office.rollbackTimeoutSeconds,
        buildTimeoutSeconds: office.buildTimeoutSeconds,
        healthUrl,
      }),
    );
    const confirmText = id.apply((d) => confirmScript({ paths, deployId: d, healthUrl }));

    recordArtifact("office/atticd.nix", module);
    recordArtifact("office/atticd.env", env);
    recordArtifact("office/atticd-monolithic.toml", renderToml(this.settings));
    recordArtifact("office/scripts/1-upload-module.sh", uploadModule);
    recordArtifact("office/scripts/2-upload-env.sh", uploadEnv);
    recordArtifact("office/scripts/3-switch.sh", switchText);
    recordArtifact("office/scripts/4-confirm.sh", confirmText);
    recordArtifact("office/scripts/teardown.sh", teardown);

    // Never replaced (no triggers): its delete is what `pulumi destroy` runs on the host, last.
    const host = new command.remote.Command(
      `${name}-host`,
      { connection, create: preflightScript(paths), delete: teardown },
      child,
    );
    const stagedModule = new command.remote.Command(
      `${name}-module`,
      { connection, create: uploadModule, stdin: module, triggers: [moduleSha] },
      { ...child, dependsOn: [host] },
    );
    const stagedEnv = new command.remote.Command(
      `${name}-env`,
      { connection, create: uploadEnv, stdin: env, triggers: [envSha], logging: "none" },
      { ...child, dependsOn: [host], additionalSecretOutputs: ["stdout", "stderr"] },
    );
    const switched = new command.remote.Command(
      `${name}-switch`,
      { connection, create: switchText, triggers: [id] },
      { ...child, dependsOn: [stagedModule, stagedEnv] },
    );
    // A separate resource is a new SSH connection: if the switch cut the host off, this cannot
    // connect, and the armed timer rolls the host back.
    const confirmed = new command.remote.Command(
      `${name}-confirm`,
      { connection, create: confirmText, triggers: [id] },
      { ...child, dependsOn: [switched] },
    );

    const server = new AtticServer(
      `${name}-attic`,
      {
        attic,
        apiEndpoint: office.apiEndpoint,
        signingKey: args.signingKey,
        waitSeconds: 300,
        dependsOn: [confirmed],
      },
      child,
    );
    this.endpoint = server.endpoint;
    this.modulePath = pulumi.output(`${paths.moduleDir}/atticd.nix`);
    this.caches = server.caches;
    this.tokens = server.tokens;
    this.nixConf = server.nixConf;
    this.netrc = server.netrc;
    this.registerOutputs({ endpoint: this.endpoint, modulePath: this.modulePath });
  }
}
