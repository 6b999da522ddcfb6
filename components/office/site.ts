/**
 * The office site: atticd on a NixOS host on the office LAN, monolithic with SQLite and local (or
 * S3-compatible) storage. The server model gives its settings, caches and tokens.
 */
import * as pulumi from "@pulumi/pulumi";
import type * as tls from "@pulumi/tls";
import type { AtticConfig, OfficeConfig } from "../../config/schema";
import { recordArtifact } from "../artifacts";
import { AtticServer, type CacheOutput } from "../attic/server";
import { type AtticSettings, atticSettings, renderToml, type StorageSettings } from "../attic/settings";

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

export class OfficeSite extends pulumi.ComponentResource {
  public readonly endpoint: pulumi.Output<string>;
  public readonly settings: AtticSettings;
  public readonly caches: pulumi.Output<Record<string, CacheOutput>>;
  public readonly tokens: pulumi.Output<Record<string, string>>;
  public readonly nixConf: pulumi.Output<string>;
  public readonly netrc: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: OfficeSiteArgs, opts?: pulumi.ComponentResourceOptions) {
    super("attic:office:Site", name, {}, opts);
    const { attic, office } = args;

    this.settings = atticSettings(attic, {
      kind: "office",
      apiEndpoint: office.apiEndpoint,
      listen: office.listen,
      storage: officeStorageSettings(office),
    });
    recordArtifact("office/atticd-monolithic.toml", renderToml(this.settings));

    const server = new AtticServer(
      `${name}-attic`,
      { attic, apiEndpoint: office.apiEndpoint, signingKey: args.signingKey, waitSeconds: 300 },
      { parent: this },
    );
    this.endpoint = server.endpoint;
    this.caches = server.caches;
    this.tokens = server.tokens;
    this.nixConf = server.nixConf;
    this.netrc = server.netrc;
    this.registerOutputs({ endpoint: this.endpoint });
  }
}
