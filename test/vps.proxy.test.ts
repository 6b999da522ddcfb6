/**
 * The vps site's proxy configuration, checked by the real programs: the generated module's
 * services.caddy and services.nginx (from the vps example stack, its proxy switched to each),
 * wrapped as nixpkgs' modules wrap them (test/support/nixpkgsProxies.ts says how, from which source,
 * and what the check changes so it stays in its own directory), then read by Debian's caddy
 * (`caddy adapt --validate`, after the `caddy fmt` nixpkgs runs at build time) and nginx (`nginx -t`,
 * with throw-away certificates). An unknown directive in the site's text fails each check.
 *
 * Not proven: that the NixOS versions of caddy and nginx accept what Debian's accept (Debian 12:
 * Caddy 2.6, NGINX 1.22; NixOS 24.11: newer), that the certificates are obtained, that traffic flows.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { vpsModuleOptions } from "../components/vps/module";
import { loadConfig } from "../config/load";
import { type Proxy, vpsModuleConfig } from "../nixos/vps";
import { nixpkgsCaddyfile, nixpkgsNginxConf, RECOMMENDED_PROXY_HEADERS } from "./support/nixpkgsProxies";
import { freePort } from "./support/sshd";
import { exampleConfig } from "./support/stacks";
import { haveTool } from "./support/tools";

const NGINX = "/usr/sbin/nginx";
const UNKNOWN_DIRECTIVE = "frobnicate_upstream on";

/** The generated module's `services` for the vps example with `proxy`. */
function services(proxy: Proxy): Record<string, unknown> {
  const raw = exampleConfig("vps");
  raw["attic-infra:vps"] = JSON.stringify({ ...JSON.parse(raw["attic-infra:vps"]!), proxy });
  const { config } = loadConfig(raw);
  return vpsModuleConfig(vpsModuleOptions(config.attic!, config.vps!, "vps")).services as Record<
    string,
    unknown
  >;
}

/** `services` with `line` appended to each virtual host's (or location's) own text. */
function withLine(s: Record<string, unknown>, proxy: Proxy, line: string): Record<string, unknown> {
  const copy = structuredClone(s) as any;
  for (const host of Object.values(copy[proxy].virtualHosts) as any[]) {
    if (proxy === "caddy") host.extraConfig += `${line}\n`;
    else for (const loc of Object.values(host.locations) as any[]) loc.extraConfig += `${line};\n`;
  }
  return copy;
}

const run = (command: string, args: string[], env?: NodeJS.ProcessEnv) => {
  const r = spawnSync(command, args, { encoding: "utf8", env });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
};

describe.skipIf(!haveTool("caddy"))("Caddy reads the vps site's configuration", () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "caddy-"));
    // Caddy keeps its data and config under HOME / XDG: the check's own directory.
    env = {
      ...process.env,
      HOME: dir,
      XDG_DATA_HOME: path.join(dir, "data"),
      XDG_CONFIG_HOME: path.join(dir, "config"),
    };
  });
  let n = 0;
  /** The Caddyfile for `caddy` options, formatted as nixpkgs formats it, then adapted with --validate. */
  const check = (caddy: unknown) => {
    const file = path.join(dir, `Caddyfile-${n++}`);
    writeFileSync(file, nixpkgsCaddyfile(caddy, { logDir: path.join(dir, "log") }));
    const fmt = run("caddy", ["fmt", "--overwrite", file], env);
    expect(fmt.status, fmt.output).toBe(0);
    return run("caddy", ["adapt", "--config", file, "--adapter", "caddyfile", "--validate"], env);
  };

  it("accepts it: a TLS site for the domain proxying to atticd, the ACME email set", () => {
    const r = check(services("caddy").caddy);
    expect(r.status, r.output).toBe(0);
    const json = JSON.parse(r.output.slice(r.output.indexOf("{"))) as any;
    const server = Object.values(json.apps.http.servers)[0] as any;
    expect(server.listen).toEqual([":443"]);
    expect(server.routes[0].match).toEqual([{ host: ["cache.example.com"] }]);
    expect(JSON.stringify(server.routes[0].handle)).toContain('"upstreams":[{"dial":"127.0.0.1:8080"}]');
    expect(JSON.stringify(json.apps.tls)).toContain('"email":"ops@example.com"');
  });

  it("refuses it with an unknown directive in the site's text", () => {
    const r = check(withLine(services("caddy"), "caddy", UNKNOWN_DIRECTIVE).caddy);
    expect(r.status).not.toBe(0);
    expect(r.output).toContain("unrecognized directive: frobnicate_upstream");
  });
});

describe.skipIf(!(haveTool(NGINX) && haveTool("openssl")))("NGINX reads the vps site's configuration", () => {
  let dir: string;
  let version: string | undefined;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "nginx-"));
    // A throw-away certificate where security.acme keeps the site's: the chain is the certificate itself.
    const certDir = path.join(dir, "acme", "cache.example.com");
    mkdirSync(certDir, { recursive: true });
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=cache.example.com",
        "-keyout",
        path.join(certDir, "key.pem"),
        "-out",
        path.join(certDir, "fullchain.pem"),
      ],
      { stdio: "pipe" },
    );
    copyFileSync(path.join(certDir, "fullchain.pem"), path.join(certDir, "chain.pem"));
    writeFileSync(path.join(dir, "proxy-headers.conf"), RECOMMENDED_PROXY_HEADERS);
    version = /nginx\/(\d+\.\d+\.\d+)/.exec(spawnSync(NGINX, ["-v"], { encoding: "utf8" }).stderr)?.[1];
  });
  let n = 0;
  /** nginx.conf for `nginx` options in a prefix of its own, tested with `nginx -t`. */
  const check = async (nginx: unknown) => {
    expect(version, "nginx -v names no version").toBeDefined();
    const prefix = path.join(dir, `prefix-${n++}`);
    mkdirSync(prefix);
    const conf = path.join(prefix, "nginx.conf");
    writeFileSync(
      conf,
      nixpkgsNginxConf(nginx, {
        prefix,
        certDir: (name) => path.join(dir, "acme", name),
        proxyHeaders: path.join(dir, "proxy-headers.conf"),
        httpPort: await freePort(),
        sslPort: await freePort(),
        version: version!,
      }),
    );
    // -e: the error log until the file is read (a build's default may be a global path).
    return {
      conf,
      ...run(NGINX, ["-t", "-p", `${prefix}/`, "-c", conf, "-e", path.join(prefix, "error.log")]),
    };
  };

  it("accepts it: HTTP redirects to HTTPS, the TLS server proxies to atticd with the client's Host", async () => {
    const r = await check(services("nginx").nginx);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain("test is successful");
    const conf = readFileSync(r.conf, "utf8");
    expect(conf).toContain("return 301 https://$host$request_uri;");
    expect(conf).toContain("proxy_pass http://127.0.0.1:8080;");
    expect(conf).toContain(`include ${path.join(dir, "proxy-headers.conf")};`);
  });

  it("refuses it with an unknown directive in the site's text", async () => {
    const r = await check(withLine(services("nginx"), "nginx", UNKNOWN_DIRECTIVE).nginx);
    expect(r.status).not.toBe(0);
    expect(r.output).toContain('unknown directive "frobnicate_upstream"');
  });
});

describe("the wrapping renders only what it knows", () => {
  it("an option of the module it does not render is an error naming it (so it cannot slip past the check)", () => {
    const caddy = structuredClone(services("caddy").caddy) as any;
    caddy.virtualHosts["cache.example.com"].serverAliases = ["www.cache.example.com"];
    expect(() => nixpkgsCaddyfile(caddy, { logDir: "/l" })).toThrow(
      'services.caddy.virtualHosts."cache.example.com".serverAliases: not rendered by test/support/nixpkgsProxies.ts',
    );
    const nginx = structuredClone(services("nginx").nginx) as any;
    nginx.virtualHosts["cache.example.com"].locations["/"].proxyWebsockets = true;
    expect(() =>
      nixpkgsNginxConf(nginx, {
        prefix: "/p",
        certDir: () => "/c",
        proxyHeaders: "/h",
        httpPort: 80,
        sslPort: 443,
        version: "1.22.1",
      }),
    ).toThrow(
      'services.nginx.virtualHosts."cache.example.com".locations."/".proxyWebsockets: not rendered by test/support/nixpkgsProxies.ts',
    );
  });
});
