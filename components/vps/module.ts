/**
 * The VPS site's pure parts: config → atticd settings (the one server model), the generated NixOS
 * module's options (nixos/vps.ts renders it), and the certificate wait. No resources here: site.ts
 * wires these to the deployer.
 */
import type { AtticConfig } from "../../config/schema";
import type { VpsConfig } from "../../config/vps";
import { type VpsModuleOptions, vpsModule } from "../../nixos/vps";
import { type AtticSettings, atticSettings, storageSettings } from "../attic/settings";
import { readScript, shellHeader } from "../shellScript";

/** atticd listens here; only the proxy on the same host reaches it. */
export const vpsListen = (vps: VpsConfig): string => `127.0.0.1:${vps.localPort}`;

export function vpsSettings(attic: AtticConfig, vps: VpsConfig): AtticSettings {
  return atticSettings(attic, {
    kind: "vps",
    domain: vps.domain,
    listen: vpsListen(vps),
    database: vps.database,
    storage: storageSettings(vps.storage),
  });
}

export function vpsModuleOptions(attic: AtticConfig, vps: VpsConfig, stack: string): VpsModuleOptions {
  const s = vps.storage;
  return {
    settings: vpsSettings(attic, vps),
    domain: vps.domain,
    acmeEmail: vps.acmeEmail,
    proxy: vps.proxy,
    sshPort: vps.port,
    sshFrom: vps.sshFrom,
    upload: vps.upload,
    backup: {
      dir: vps.backup.dir,
      keepDays: vps.backup.keepDays,
      ...(s.type === "s3"
        ? {
            copyTo: {
              bucket: s.bucket,
              region: s.region,
              ...(s.endpoint === undefined ? {} : { endpoint: s.endpoint }),
              prefix: vps.backup.prefix,
            },
          }
        : {}),
    },
    stack,
  };
}

export const vpsModuleText = (attic: AtticConfig, vps: VpsConfig, stack: string): string =>
  vpsModule(vpsModuleOptions(attic, vps, stack));

/**
 * Runs on the host after the deploy is confirmed (certificate-wait.sh): waits (bounded) until the
 * proxy serves https://<domain>/ with a certificate curl trusts. On a first deploy Let's Encrypt
 * needs the domain's A/AAAA records to point at the host and port 80 open; until then there is no
 * certificate.
 */
export function certificateWaitScript(o: {
  domain: string;
  proxy: "caddy" | "nginx";
  waitSeconds: number;
}): string {
  const header = shellHeader(
    [`attic-infra: wait for the TLS certificate of ${o.domain}. Generated; see components/vps/module.ts.`],
    {
      url: `https://${o.domain}/`,
      domain: o.domain,
      wait_seconds: String(o.waitSeconds),
      unit: o.proxy === "caddy" ? "caddy" : `acme-${o.domain}`,
    },
  );
  return `${header}${readScript(__dirname, "certificate-wait.sh")}`;
}
