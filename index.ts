/**
 * attic-infra: a private Nix binary cache (atticd) on AWS, on an office NixOS host, on a public NixOS
 * host (a VPS), and the office switch's VLAN for it. Each stack's `attic-infra:sites` selects which of these it deploys.
 */

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { type CacheSite, multiSiteNixConfSnippet } from "./components/attic/nixConf";
import { tokenSigningKey } from "./components/attic/signingKey";
import { AwsSite } from "./components/aws/site";
import { MikrotikSwitch } from "./components/mikrotik/switch";
import { OfficeSite } from "./components/office/site";
import type { CacheSiteOutputs, Deferred, Outputs, StackOutputs } from "./components/outputs";
import { VpsSite } from "./components/vps/site";
import { ConfigError, loadConfig } from "./config/load";
import { type AwsConfig, engineVersionVerdict } from "./config/schema";

function readConfig() {
  try {
    return loadConfig(pulumi.runtime.allConfig());
  } catch (err) {
    // RunError prints the message alone, without a stack trace.
    if (err instanceof ConfigError) throw new pulumi.RunError(err.message);
    throw err;
  }
}

/**
 * A dedicated database's major version against RDS's support calendar. Whether the stack's instance
 * already exists decides between an error (a new database on an unsupported version) and a warning
 * (never block an unrelated `up`). Offline there is no state to ask, so the program asks AWS: an RDS
 * instance tagged with this stack (provider defaultTags) exists or not. Under the synth mocks none
 * does: every synth is a new stack.
 */
async function checkEngineVersion(site: AwsConfig, provider: aws.Provider): Promise<void> {
  if (site.database.mode !== "dedicated") return;
  const found = await aws.rds.getInstances(
    { tags: { "attic-infra:stack": pulumi.getStack(), "managed-by": "pulumi" } },
    { provider },
  );
  const verdict = engineVersionVerdict(site.database.engineVersion, {
    instanceExists: found.instanceIdentifiers.length > 0,
    today: new Date(),
  });
  if (verdict.error) throw new pulumi.RunError(new ConfigError([verdict.error]).message);
  if (verdict.warning) pulumi.log.warn(verdict.warning);
}

async function main(): Promise<Deferred<StackOutputs>> {
  const { config, warnings } = readConfig();
  for (const w of warnings) pulumi.log.warn(w);

  const outputs: { [K in keyof StackOutputs]: Deferred<StackOutputs[K]> } = { sites: config.sites };
  // The AWS provider first: the engine-version check asks AWS before anything else is registered.
  const provider = config.aws
    ? new aws.Provider("aws", {
        ...(config.awsRegion ? { region: config.awsRegion as aws.Region } : {}),
        defaultTags: {
          tags: { ...config.aws.tags, "attic-infra:stack": pulumi.getStack(), "managed-by": "pulumi" },
        },
      })
    : undefined;
  if (config.aws && provider) await checkEngineVersion(config.aws, provider);
  const signingKey = config.attic ? tokenSigningKey() : undefined;
  if (signingKey) {
    // For `pulumi state unprotect` / `pulumi up --replace` when rotating it (docs/runbooks.md).
    outputs.signingKeyUrn = signingKey.urn;
    // Public: `npm run verify` checks each exported token against it.
    outputs.tokenPublicKey = signingKey.publicKeyPem;
  }

  // The cache sites of this stack, for the nix.conf snippets that list several of them.
  const cacheSites: Array<{ site: CacheSite; outputs: Outputs<CacheSiteOutputs> }> = [];
  if (config.aws && config.attic && signingKey && provider) {
    const site = new AwsSite(
      "aws",
      { attic: config.attic, aws: config.aws, signingKey },
      { providers: { aws: provider } },
    );
    const o = { ...site.outputs };
    outputs.aws = o;
    cacheSites.push({ site: "aws", outputs: o });
  }
  // The office host gets its network from the switch: with both sites in one stack, the host
  // deploys after the switch's confirm, and `pulumi destroy` tears the host down first.
  const sw = config.mikrotik ? new MikrotikSwitch("mikrotik", { mikrotik: config.mikrotik }) : undefined;
  if (config.office && config.attic && signingKey) {
    const site = new OfficeSite("office", {
      attic: config.attic,
      office: config.office,
      signingKey,
      ...(sw ? { dependsOn: [sw] } : {}),
    });
    const o = { ...site.outputs };
    outputs.office = o;
    cacheSites.push({ site: "office", outputs: o });
  }
  if (config.vps && config.attic && signingKey) {
    const site = new VpsSite("vps", { attic: config.attic, vps: config.vps, signingKey });
    const o = { ...site.outputs };
    outputs.vps = o;
    cacheSites.push({ site: "vps", outputs: o });
  }
  if (cacheSites.length > 1) {
    // Each site's clients get its caches and those of every farther site, nearest first by priority.
    const all = pulumi.all(cacheSites.map((s) => s.outputs.caches));
    for (const { site, outputs: o } of cacheSites) {
      o.nixConf = all.apply((caches) =>
        multiSiteNixConfSnippet(
          cacheSites.map((s, i) => ({ site: s.site, caches: caches[i]! })),
          site,
        ),
      );
    }
  }
  if (sw) {
    outputs.mikrotik = {
      gateway: sw.gateway,
      vlanId: sw.vlanId,
      leases: sw.leases,
      dnsRecords: sw.dnsRecords,
      // `pulumi up --target` pattern for the switch alone: the component and all its children.
      target: `urn:pulumi:${pulumi.getStack()}::${pulumi.getProject()}::attic:mikrotik:Switch**`,
    };
  }
  return outputs;
}

export = main;
