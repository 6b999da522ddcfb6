/**
 * The attic server as a site sees it: the caches declared in config, created through atticd's API
 * once the site's server answers, the tokens minted for CI, and the snippets clients paste into
 * nix.conf and netrc. Used by the aws and office sites alike.
 */
import * as pulumi from "@pulumi/pulumi";
import type * as tls from "@pulumi/tls";
import { type AtticConfig, retentionSeconds } from "../../config/schema";
import { AtticCache } from "./cacheProvider";
import { netrcLine, nixConfSnippet } from "./nixConf";
import { pullOnly } from "./pullTokens";
import { mintToken } from "./tokens";

export { netrcLine, nixConfSnippet } from "./nixConf";

export interface CacheOutput {
  substituter: string;
  publicKey: string;
  /** As configured: `npm run verify` checks the server agrees (nix-cache-info, anonymous access). */
  public: boolean;
  priority: number;
}

export interface AtticServerArgs {
  attic: AtticConfig;
  /** The URL clients and this program use, ending with "/". */
  apiEndpoint: pulumi.Input<string>;
  signingKey: tls.PrivateKey;
  /** Resources that must exist before the API answers (the service, the host switch). */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
  /** How long cache creation waits for the server to answer. */
  waitSeconds?: number;
}

export class AtticServer extends pulumi.ComponentResource {
  public readonly endpoint: pulumi.Output<string>;
  public readonly caches: pulumi.Output<Record<string, CacheOutput>>;
  /** Token name → JWT. Secret. */
  public readonly tokens: pulumi.Output<Record<string, string>>;
  /** Token name → the same token narrowed to pull (pullTokens.ts), for tokens that can pull. Secret. */
  public readonly pullTokens: pulumi.Output<Record<string, string>>;
  /** Lines for nix.conf: extra-substituters and extra-trusted-public-keys. */
  public readonly nixConf: pulumi.Output<string>;
  /** Token name → `machine <host> password <token>` for netrc-file. Secret. */
  public readonly netrc: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: AtticServerArgs, opts?: pulumi.ComponentResourceOptions) {
    // Args stay out of super(): they would be stored in the state and may hold Outputs (pulumi#23953).
    super("attic:attic:Server", name, {}, opts);

    this.endpoint = pulumi.output(args.apiEndpoint);

    const caches = args.attic.caches.map(
      (c) =>
        new AtticCache(
          `${name}-cache-${c.name}`,
          {
            apiEndpoint: args.apiEndpoint,
            name: c.name,
            isPublic: c.public,
            priority: c.priority,
            upstreamCacheKeyNames: c.upstreamCacheKeyNames,
            retentionSeconds: c.retention === undefined ? null : retentionSeconds(c.retention),
            destroyOnDelete: c.destroyOnDelete,
            signingKeyPem: args.signingKey.privateKeyPem,
            ...(args.waitSeconds === undefined ? {} : { waitSeconds: args.waitSeconds }),
          },
          { parent: this, dependsOn: args.dependsOn ?? [] },
        ),
    );
    this.caches = pulumi
      .all(caches.map((c) => pulumi.all([c.substituterEndpoint, c.publicKey])))
      .apply((pairs) =>
        Object.fromEntries(
          args.attic.caches.map((c, i) => [
            c.name,
            { substituter: pairs[i]![0], publicKey: pairs[i]![1], public: c.public, priority: c.priority },
          ]),
        ),
      );

    const declared = args.attic.caches.map((c) => c.name);
    const tokens = Object.fromEntries(
      args.attic.tokens.map((t) => [
        t.name,
        args.signingKey.privateKeyPem.apply((pem) => mintToken(pem, t, declared)),
      ]),
    );
    this.tokens = pulumi.secret(pulumi.all(tokens));
    const pullTokens = Object.fromEntries(
      args.attic.tokens.flatMap((t) => {
        const pull = pullOnly(t);
        return pull
          ? [[t.name, args.signingKey.privateKeyPem.apply((pem) => mintToken(pem, pull, declared))]]
          : [];
      }),
    );
    this.pullTokens = pulumi.secret(pulumi.all(pullTokens));

    this.nixConf = this.caches.apply((cs) => nixConfSnippet(Object.values(cs)));
    this.netrc = pulumi.secret(
      pulumi
        .all([this.endpoint, this.tokens])
        .apply(([endpoint, ts]) =>
          Object.fromEntries(Object.entries(ts).map(([k, jwt]) => [k, netrcLine(endpoint, jwt)])),
        ),
    );

    this.registerOutputs({
      endpoint: this.endpoint,
      caches: this.caches,
      tokens: this.tokens,
      pullTokens: this.pullTokens,
      nixConf: this.nixConf,
      netrc: this.netrc,
    });
  }
}
