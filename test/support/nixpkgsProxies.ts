/**
 * What nixpkgs' web-server modules write from the options the vps module sets, so the real caddy
 * and nginx can check the result: the vps module only hands over a virtual host's pieces
 * (services.caddy.virtualHosts.<domain>.extraConfig, services.nginx.virtualHosts.<domain>.locations),
 * and only inside the wrapping below do they become a configuration a server reads.
 *
 * From nixpkgs (NixOS/nixpkgs, read November 2026):
 * - nixos/modules/services/web-servers/caddy/default.nix, `configFile` and `mkVHostConf`, and
 *   vhost-options.nix: a global block `{ email <email>  log { level ERROR } }` (the `email` and
 *   `logFormat` options), then per virtual host `<hostName> <serverAliases> { log { output file
 *   <logDir>/access-<hostName>.log } <extraConfig> }`; the file is `caddy fmt`-ed at build time and
 *   run with `--adapter caddyfile`.
 * - nixos/modules/services/web-servers/nginx/default.nix, `configFile`, `commonHttpConfig`,
 *   `vhosts`, `mkLocations`, `recommendedProxyConfig`, and vhost-options.nix (http2 on by default,
 *   acmeRoot /var/lib/acme/acme-challenge): `pid`, `error_log stderr`, `daemon off`, `events {}`,
 *   an `http` block with the mime types, fastcgi.conf, uwsgi_params, ssl_protocols and ssl_ciphers
 *   (the defaults), the `$connection_upgrade` map, client_max_body_size 10m, server_tokens off; per
 *   forceSSL virtual host a port-80 server that redirects (301) and answers ACME challenges, and a
 *   TLS server on 0.0.0.0 and [::0] with the ACME certificate (security.acme: /var/lib/acme/<name>/
 *   fullchain.pem, key.pem, chain.pem), `http2 on` (or `listen … http2` before nginx 1.25.1, as
 *   nixpkgs' oldHTTP2), the ACME location and each location: proxy_pass, extraConfig, then the
 *   recommended proxy headers (Host, X-Real-IP, X-Forwarded-For/-Proto/-Host/-Server).
 *
 * What the tests change, as a host's own options would, so the check touches nothing outside its
 * directory and runs as any user: Caddy's logDir; the certificate directory (throw-away
 * certificates); nginx's pid file, the listen ports (defaultHTTPListenPort/defaultSSLListenPort: free
 * unprivileged ports, since `nginx -t` binds them), and, in commonHttpConfig, the access log and the
 * temporary directories (Debian's nginx would use /var/log/nginx and /var/lib/nginx); the include
 * files come from Debian's nginx (/etc/nginx) instead of the Nix store.
 *
 * Any option the vps module sets that is not rendered here is an error: a new option must be added
 * here (from nixpkgs' source) before the check can pass.
 */
import { NixCall, NixExpr } from "../../nixos/nix";

type Options = Record<string, unknown>;

/** `o` as a plain attribute set (any names), or an error naming `where`. */
function attrs(o: unknown, where: string): Options {
  if (o === null || typeof o !== "object" || Array.isArray(o) || o instanceof NixCall || o instanceof NixExpr)
    throw new Error(`${where}: not a plain attribute set; its rendering is not modelled here`);
  return o as Options;
}

/** `o` as a plain attribute set whose names are all in `known`, or an error naming `where`. */
function only(o: unknown, where: string, known: string[]): Options {
  const unknown = Object.keys(attrs(o, where)).filter((k) => !known.includes(k));
  if (unknown.length > 0)
    throw new Error(
      `${where}.${unknown.join(", ")}: not rendered by test/support/nixpkgsProxies.ts; add it from nixpkgs' module`,
    );
  return o as Options;
}

function text(v: unknown, where: string): string {
  if (typeof v !== "string") throw new Error(`${where}: not a string`);
  return v;
}

export interface CaddyFiles {
  /** services.caddy.logDir (nixpkgs: /var/log/caddy). */
  logDir: string;
}

/** The Caddyfile nixpkgs' caddy module writes for `services.caddy` (before `caddy fmt`). */
export function nixpkgsCaddyfile(caddy: unknown, files: CaddyFiles): string {
  const cfg = only(caddy, "services.caddy", ["enable", "email", "virtualHosts"]);
  if (cfg.enable !== true) throw new Error("services.caddy.enable is not true");
  const globalConfig = [
    cfg.email === undefined ? "" : `email ${text(cfg.email, "services.caddy.email")}`,
    "log {",
    "  level ERROR",
    "}",
  ].join("\n");
  const vhosts = Object.entries(attrs(cfg.virtualHosts ?? {}, "services.caddy.virtualHosts")).map(
    ([name, v]) => {
      const host = only(v, `services.caddy.virtualHosts."${name}"`, ["extraConfig"]);
      return [
        `${name}  {`,
        "  log {",
        `    output file ${files.logDir}/access-${name}.log`,
        "  }",
        "",
        text(host.extraConfig ?? "", `services.caddy.virtualHosts."${name}".extraConfig`),
        "}",
      ].join("\n");
    },
  );
  return `{\n${globalConfig}\n}\n\n${vhosts.join("\n")}\n`;
}

export interface NginxFiles {
  /** Where the pid file and the test's logs and temporary directories go. */
  prefix: string;
  /** security.acme.certs.<name>.directory (nixpkgs: /var/lib/acme/<name>): fullchain.pem, key.pem, chain.pem. */
  certDir: (name: string) => string;
  /** The recommended proxy headers file (nixpkgs writes it to the store). */
  proxyHeaders: string;
  /** defaultHTTPListenPort and defaultSSLListenPort (nixpkgs: 80, 443). */
  httpPort: number;
  sslPort: number;
  /** The nginx that will read the file (nixpkgs: its package's version) — http2 is written by it. */
  version: string;
}

/** The text of nixpkgs' recommendedProxyConfig: the headers `recommendedProxySettings` includes. */
export const RECOMMENDED_PROXY_HEADERS = [
  "proxy_set_header        Host $host;",
  "proxy_set_header        X-Real-IP $remote_addr;",
  "proxy_set_header        X-Forwarded-For $proxy_add_x_forwarded_for;",
  "proxy_set_header        X-Forwarded-Proto $scheme;",
  "proxy_set_header        X-Forwarded-Host $host;",
  "proxy_set_header        X-Forwarded-Server $hostname;",
  "",
].join("\n");

const SSL_CIPHERS = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
];

/** nixpkgs' oldHTTP2: nginx before 1.25.1 takes `http2` on `listen`, later ones `http2 on;`. */
function oldHttp2(version: string): boolean {
  const [major = 0, minor = 0, patch = 0] = version.split(".").map(Number);
  return major * 1e6 + minor * 1e3 + patch < 1_025_001;
}

/** The nginx.conf nixpkgs' nginx module writes for `services.nginx`. */
export function nixpkgsNginxConf(nginx: unknown, files: NginxFiles): string {
  const cfg = only(nginx, "services.nginx", ["enable", "virtualHosts"]);
  if (cfg.enable !== true) throw new Error("services.nginx.enable is not true");
  const http2Listen = oldHttp2(files.version);
  const p = files.prefix;
  const vhosts = Object.entries(attrs(cfg.virtualHosts ?? {}, "services.nginx.virtualHosts")).map(
    ([name, v]) => {
      const where = `services.nginx.virtualHosts."${name}"`;
      const vhost = only(v, where, ["enableACME", "forceSSL", "locations"]);
      if (vhost.enableACME !== true || vhost.forceSSL !== true)
        throw new Error(`${where}: only enableACME + forceSSL hosts are rendered here`);
      const listen = (port: number, ssl: boolean) =>
        ["0.0.0.0", "[::0]"]
          .map((addr) => `listen ${addr}:${port} ${ssl && http2Listen ? "http2 " : ""}${ssl ? "ssl " : ""};`)
          .join("\n");
      const acmeLocation = [
        "location ^~ /.well-known/acme-challenge/ {",
        "  root /var/lib/acme/acme-challenge;",
        "  auth_basic off;",
        "  auth_request off;",
        "}",
      ].join("\n");
      const locations = Object.entries(attrs(vhost.locations ?? {}, `${where}.locations`))
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([path, l]) => {
          const lw = `${where}.locations."${path}"`;
          const loc = only(l, lw, ["proxyPass", "recommendedProxySettings", "extraConfig"]);
          return [
            `location ${path} {`,
            loc.proxyPass === undefined ? "" : `proxy_pass ${text(loc.proxyPass, `${lw}.proxyPass`)};`,
            text(loc.extraConfig ?? "", `${lw}.extraConfig`),
            loc.proxyPass !== undefined && loc.recommendedProxySettings === true
              ? `include ${files.proxyHeaders};`
              : "",
            "}",
          ].join("\n");
        });
      const certs = files.certDir(name);
      return [
        "server {",
        listen(files.httpPort, false),
        `server_name ${name} ;`,
        "location / {",
        "  return 301 https://$host$request_uri;",
        "}",
        acmeLocation,
        "}",
        "server {",
        listen(files.sslPort, true),
        `server_name ${name} ;`,
        http2Listen ? "" : "http2 on;",
        `ssl_certificate ${certs}/fullchain.pem;`,
        `ssl_certificate_key ${certs}/key.pem;`,
        `ssl_trusted_certificate ${certs}/chain.pem;`,
        acmeLocation,
        ...locations,
        "}",
      ].join("\n");
    },
  );
  return [
    `pid ${p}/nginx.pid;`,
    "error_log stderr;",
    "daemon off;",
    "events {",
    "}",
    "http {",
    "include /etc/nginx/mime.types;",
    "types_hash_max_size 2688;",
    "include /etc/nginx/fastcgi.conf;",
    "include /etc/nginx/uwsgi_params;",
    "default_type application/octet-stream;",
    "ssl_protocols TLSv1.2 TLSv1.3;",
    `ssl_ciphers ${SSL_CIPHERS.join(":")};`,
    "map $http_upgrade $connection_upgrade {",
    "  default upgrade;",
    "  ''      close;",
    "}",
    "client_max_body_size 10m;",
    "server_tokens off;",
    // commonHttpConfig, as the test's host sets it: everything nginx writes stays in the prefix.
    `access_log ${p}/access.log;`,
    ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `${t}_temp_path ${p}/${t};`),
    ...vhosts,
    "}",
    "",
  ].join("\n");
}
