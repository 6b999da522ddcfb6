/**
 * The sites that deploy with the shared NixOS host deployer (components/nixosHost), as the deploy
 * scenarios run them against the fake NixOS host: each site's generated module (from its checked-in
 * example stack), its environment file, and its service spec with the fake host's file locations
 * and health endpoint in place of the real ones.
 *
 * - office: the spec components/office/site.ts builds (no Host header).
 * - vps: vpsServiceSpec (components/vps/site.ts), whose health check sends `Host: <domain>`; the
 *   fake's endpoint gets atticd's `allowed-hosts = [<domain>]`, so it answers 400 to any other Host.
 *   The example stack keeps metadata in PostgreSQL, whose schema a rollback does not undo
 *   (docs/vps.md; the fake has no PostgreSQL): the scenarios use the same stack with
 *   `database: sqlite`, the variant whose spec names the database the deployer snapshots.
 */
import { atticSettings } from "../../components/attic/settings";
import { storageSettings } from "../../components/attic/settings";
import { listenFacts } from "../../components/office/site";
import { vpsModuleText } from "../../components/vps/module";
import { vpsServiceSpec } from "../../components/vps/site";
import { loadConfig } from "../../config/load";
import { officeModule } from "../../nixos/office";
import { environmentFile } from "../../nixos/shared";
import type { FakeNixosHost } from "./fakeNixosHost";
import { SECRET } from "./nixosDeploy";
import { exampleConfig } from "./stacks";

export interface NixosSite {
  readonly name: "office" | "vps";
  /** The site's generated module, marked for the fake's atticd: its version and behaviour markers. */
  module(version: number, marker?: string): string;
  /** The site's environment file (the signing key is SECRET). */
  readonly env: string;
  /** Gives `host` the site's service spec (units, health Host) and atticd's host check. */
  adapt(host: FakeNixosHost): void;
}

const marked = (module: string, version: number, marker: string) =>
  `${module}# atticd-version: ${version} ${marker}\n`;

function office(): NixosSite {
  const { attic, office } = (() => {
    const { config } = loadConfig(exampleConfig("office"));
    return { attic: config.attic!, office: config.office! };
  })();
  const text = officeModule({
    settings: atticSettings(attic, {
      kind: "office",
      apiEndpoint: office.apiEndpoint,
      listen: office.listen,
      storage: storageSettings(office.storage),
    }),
    port: listenFacts(office.listen).port,
    openFirewall: office.openFirewall,
    ...(office.storage.type === "local" && office.storage.device
      ? { storageDevice: office.storage.device }
      : {}),
    backup: office.backup,
    stack: "office",
  });
  return {
    name: "office",
    module: (version, marker = "") => marked(text, version, marker),
    env: environmentFile(SECRET, office.storage),
    // The fake host's own spec is the office's: atticd.service, no Host header.
    adapt: () => {},
  };
}

function vps(): NixosSite {
  const raw = exampleConfig("vps");
  raw["attic-infra:vps"] = JSON.stringify({ ...JSON.parse(raw["attic-infra:vps"]!), database: "sqlite" });
  const { attic, vps } = (() => {
    const { config } = loadConfig(raw);
    return { attic: config.attic!, vps: config.vps! };
  })();
  const text = vpsModuleText(attic, vps, "vps");
  const spec = vpsServiceSpec(vps);
  return {
    name: "vps",
    module: (version, marker = "") => marked(text, version, marker),
    env: environmentFile(SECRET, vps.storage),
    adapt: (host) => {
      host.allowHosts([vps.domain]);
      Object.assign(host.service, {
        units: spec.units,
        healthHost: spec.healthHost,
      });
    },
  };
}

export const sites: NixosSite[] = [office(), vps()];
export const site = (name: NixosSite["name"]): NixosSite => sites.find((s) => s.name === name)!;
