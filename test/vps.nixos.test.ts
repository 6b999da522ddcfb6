/**
 * The VPS's generated NixOS module, checked by the real Nix evaluator (`nix-instantiate`) with the
 * same stub approach as the office module (test/nixos.test.ts): the module is called with stand-in
 * `pkgs` (names as strings), `config` (the few host facts it reads) and `lib`, whose mkIf, mkForce,
 * mkBefore are the attribute sets nixpkgs' lib/modules.nix returns (`{ _type = "if"; condition;
 * content; }`, `{ _type = "override"; priority = 50; ... }`, `{ _type = "order"; priority = 500;
 * ... }`), so the test sees exactly what the module system would merge.
 *
 * Proven: the module parses and evaluates, and its values are the ones the TypeScript model means
 * (atticd's settings, the socket URL, no password, the proxy's TLS and upload limits, the firewall
 * rules for both backends). Not proven (no nixpkgs here): that caddy/nginx/postgresql/acme/firewall
 * accept these option names and values (checked by hand against nixpkgs' module sources, see the
 * header of nixos/vps.ts; that Caddy and NGINX read the proxy text, wrapped as nixpkgs wraps
 * it, is test/vps.proxy.test.ts), and that the system
 * builds.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { vpsModuleOptions, vpsSettings } from "../components/vps/module";
import { loadConfig } from "../config/load";
import type { AtticConfig, VpsConfig } from "../config/schema";
import { dumpScript, preUpgradeDumpScript, vpsModule } from "../nixos/vps";
import { exampleBlocks, toConfigMap } from "./support/stacks";
import { haveTool } from "./support/tools";

const dir = mkdtempSync(path.join(tmpdir(), "vps-nix-"));
let n = 0;
function nixFile(text: string): string {
  const file = path.join(dir, `m${n++}.nix`);
  writeFileSync(file, text);
  return file;
}

const LIB_STUB = `{
  mkIf = condition: content: { _type = "if"; inherit condition content; };
  mkOverride = priority: content: { _type = "override"; inherit priority content; };
  mkForce = content: { _type = "override"; priority = 50; inherit content; };
  mkBefore = content: { _type = "order"; priority = 500; inherit content; };
  optionalString = cond: s: if cond then s else "";
  concatStrings = builtins.concatStringsSep "";
}`;
const PKGS_STUB = `{ curl = "pkgs.curl"; coreutils = "pkgs.coreutils"; findutils = "pkgs.findutils"; gawk = "pkgs.gawk"; util-linux = "pkgs.util-linux"; awscli2 = "pkgs.awscli2"; sqlite = "pkgs.sqlite"; }`;
const host = (o: { nftables?: boolean; ipv6?: boolean; firewall?: boolean; firewalld?: boolean } = {}) => `{
  networking = { nftables.enable = ${o.nftables ?? false}; enableIPv6 = ${o.ipv6 ?? true}; firewall.enable = ${o.firewall ?? true}; };
  services = { postgresql.package = "pkgs.postgresql"; atticd.package = "/nix/store/abc-attic-server"; ${o.firewalld ? "firewalld.enable = true;" : ""} };
}`;

/** Evaluates `expr`, in which `m` is the module called with the stubs, to JSON. */
function evalModule(text: string, expr: string, hostExpr = host()): any {
  const full = `let m = import ${nixFile(text)} { lib = ${LIB_STUB}; pkgs = ${PKGS_STUB}; config = ${hostExpr}; }; in ${expr}`;
  return JSON.parse(
    execFileSync("nix-instantiate", ["--eval", "--strict", "--json", "-E", full], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
}

type Blocks = Record<string, any>;
function loaded(edit: (b: Blocks) => void = () => {}): { attic: AtticConfig; vps: VpsConfig } {
  const blocks = exampleBlocks("vps") as Blocks;
  // The example's `secure:` values, as `pulumi config set --secret` would provide them.
  Object.assign(blocks["attic-infra:vps"].storage.s3, {
    accessKeyId: "K003example",
    secretAccessKey: "SYNTHSECRET-b2-application-key",
  });
  edit(blocks);
  const { config } = loadConfig(toConfigMap(blocks));
  return { attic: config.attic!, vps: config.vps! };
}
const moduleText = (edit?: (b: Blocks) => void) => {
  const { attic, vps } = loaded(edit);
  return vpsModule(vpsModuleOptions(attic, vps, "vps"));
};

describe.skipIf(!haveTool("nix-instantiate"))("the VPS module, evaluated with stubs", () => {
  let caddy: string;
  let nginx: string;
  beforeAll(() => {
    caddy = moduleText();
    nginx = moduleText((b) => (b["attic-infra:vps"].proxy = "nginx"));
  });

  it("evaluates as a whole (every value forced) with both proxies and both firewall backends", () => {
    for (const text of [caddy, nginx])
      for (const nftables of [false, true]) {
        const all = evalModule(text, "m.services", host({ nftables }));
        expect(all.atticd.enable).toBe(true);
      }
  });

  it("services.atticd.settings equal the TypeScript model", () => {
    const { attic, vps } = loaded();
    expect(evalModule(caddy, "m.services.atticd.settings")).toEqual(vpsSettings(attic, vps));
  });

  it("atticd listens on loopback only, and the proxy forwards to exactly that address", () => {
    const settings = evalModule(caddy, "m.services.atticd.settings");
    expect(settings.listen).toBe("127.0.0.1:8080");
    expect(evalModule(caddy, 'm.services.caddy.virtualHosts."cache.example.com".extraConfig')).toContain(
      "reverse_proxy 127.0.0.1:8080 {",
    );
    expect(
      evalModule(nginx, 'm.services.nginx.virtualHosts."cache.example.com".locations."/".proxyPass'),
    ).toBe("http://127.0.0.1:8080");
  });

  it("api-endpoint is https://<domain>/ and allowed-hosts holds the domain (the Host the proxy passes)", () => {
    const settings = evalModule(caddy, "m.services.atticd.settings");
    expect(settings["api-endpoint"]).toBe("https://cache.example.com/");
    expect(settings["allowed-hosts"]).toEqual(["cache.example.com"]);
  });

  it("PostgreSQL: database, role and OS user atticd, peer auth over the socket, URL without a password", () => {
    const settings = evalModule(caddy, "m.services.atticd.settings");
    expect(settings.database).toEqual({ url: "postgresql:///atticd?host=/run/postgresql", heartbeat: true });
    const pg = evalModule(caddy, "m.services.postgresql");
    expect(pg.enable).toBe(true);
    expect(pg.ensureDatabases).toEqual(["atticd"]);
    expect(pg.ensureUsers).toEqual([{ name: "atticd", ensureDBOwnership: true }]);
    expect(pg.authentication).toEqual({
      _type: "order",
      priority: 500,
      content: "local atticd atticd peer\n",
    });
    expect(evalModule(caddy, "m.services.atticd.user or null")).toBe(null); // nixpkgs' default: atticd
  });

  it("no password, key or secret anywhere in the module (it lands in the world-readable store)", () => {
    for (const text of [caddy, nginx]) {
      expect(text).not.toMatch(/password|PGPASSWORD|SYNTHSECRET|PRIVATE KEY|AWS_SECRET|AWS_ACCESS_KEY_ID/i);
      expect(text).not.toContain("ATTIC_SERVER_TOKEN");
    }
  });

  it("Caddy: HTTPS for the domain with the ACME email, body limit, streaming, upload timeouts", () => {
    expect(evalModule(caddy, "m.services.caddy.email")).toBe("ops@example.com");
    const vhost = evalModule(caddy, 'm.services.caddy.virtualHosts."cache.example.com".extraConfig');
    expect(vhost).toBe(
      [
        "request_body {",
        "  max_size 64GiB",
        "}",
        "reverse_proxy 127.0.0.1:8080 {",
        "  flush_interval -1",
        "  transport http {",
        "    read_timeout 3600s",
        "    write_timeout 3600s",
        "  }",
        "}",
        "",
      ].join("\n"),
    );
    // A site address without a scheme gets a certificate and an HTTP→HTTPS redirect (Caddy's
    // automatic HTTPS); header_up is never set, so the client's Host reaches atticd.
    expect(vhost).not.toContain("header_up");
    expect(evalModule(caddy, 'builtins.attrNames m.services.caddy.virtualHosts."cache.example.com"')).toEqual(
      ["extraConfig"],
    );
  });

  it("NGINX: ACME certificate, forced HTTPS, client Host passed, unlimited-enough body, streamed HTTP/1.1 upload", () => {
    expect(evalModule(nginx, "m.security.acme")).toEqual({
      acceptTerms: true,
      defaults: { email: "ops@example.com" },
    });
    const vhost = evalModule(nginx, 'm.services.nginx.virtualHosts."cache.example.com"');
    expect(vhost.enableACME).toBe(true);
    expect(vhost.forceSSL).toBe(true);
    const loc = vhost.locations["/"];
    expect(loc.recommendedProxySettings).toBe(true);
    expect(loc.extraConfig.split("\n")).toEqual([
      "client_max_body_size 64g;",
      "client_body_timeout 3600s;",
      "proxy_http_version 1.1;",
      "proxy_request_buffering off;",
      "proxy_send_timeout 3600s;",
      "proxy_read_timeout 3600s;",
      "",
    ]);
  });

  it("firewall: 80/443 open, openssh.openFirewall forced off, SSH only from sshFrom (iptables, IPv4 and IPv6)", () => {
    expect(evalModule(caddy, "m.networking.firewall.allowedTCPPorts")).toEqual([80, 443]);
    expect(evalModule(nginx, "m.networking.firewall.allowedTCPPorts")).toEqual([80, 443]);
    expect(evalModule(caddy, "m.services.openssh.openFirewall")).toEqual({
      _type: "override",
      priority: 50,
      content: false,
    });
    expect(evalModule(caddy, "m.networking.firewall.extraCommands")).toEqual({
      _type: "if",
      condition: true,
      content:
        "iptables -w -A nixos-fw -p tcp --dport 22 -s 198.51.100.0/24 -j nixos-fw-accept\n" +
        "ip6tables -w -A nixos-fw -p tcp --dport 22 -s 2001:db8:100::/48 -j nixos-fw-accept\n",
    });
    expect(evalModule(caddy, "m.networking.firewall.extraInputRules.condition")).toBe(false);
  });

  it("firewall: no ip6tables rule on a host without IPv6", () => {
    expect(evalModule(caddy, "m.networking.firewall.extraCommands.content", host({ ipv6: false }))).toBe(
      "iptables -w -A nixos-fw -p tcp --dport 22 -s 198.51.100.0/24 -j nixos-fw-accept\n",
    );
  });

  it("firewall: with networking.nftables.enable the rules go to extraInputRules (IPv4 and IPv6)", () => {
    const h = host({ nftables: true });
    expect(evalModule(caddy, "m.networking.firewall.extraCommands.condition", h)).toBe(false);
    expect(evalModule(caddy, "m.networking.firewall.extraInputRules", h)).toEqual({
      _type: "if",
      condition: true,
      content:
        "ip saddr { 198.51.100.0/24 } tcp dport 22 accept\nip6 saddr { 2001:db8:100::/48 } tcp dport 22 accept\n",
    });
  });

  it("firewall: a host with the firewall off, or firewalld, fails the module's assertions", () => {
    const ok = (h: string) => evalModule(caddy, "map (a: a.assertion) m.assertions", h);
    expect(ok(host())).toEqual([true, true]);
    expect(ok(host({ firewall: false }))).toEqual([false, true]);
    expect(ok(host({ firewalld: true }))).toEqual([true, false]);
  });

  it("the SSH rules use the configured SSH port", () => {
    const text = moduleText((b) => (b["attic-infra:vps"].port = 2222));
    expect(evalModule(text, "m.networking.firewall.extraCommands.content")).toContain("--dport 2222 ");
  });

  it("daily dumps: pg_dump as postgres, after PostgreSQL, copied to the bucket with the B2 checksum setting", () => {
    const svc = evalModule(caddy, "m.systemd.services.atticd-dump");
    expect(svc.after).toEqual(["postgresql.service", "postgresql-setup.service"]);
    expect(svc.path).toContain("pkgs.postgresql");
    expect(svc.path).toContain("pkgs.awscli2");
    expect(svc.serviceConfig.EnvironmentFile).toBe("/var/lib/attic-infra/atticd.env");
    expect(svc.environment).toEqual({
      AWS_DEFAULT_REGION: "eu-central-003",
      AWS_REQUEST_CHECKSUM_CALCULATION: "when_required",
      AWS_RESPONSE_CHECKSUM_VALIDATION: "when_required",
    });
    expect(svc.script).toContain("runuser -u postgres -- pg_dump --format=custom atticd");
    expect(svc.script).toContain("dest='s3://example-attic/attic-infra/db-dumps/'");
    expect(svc.script).toContain("keep_days='14'");
    expect(svc.script).toContain("database='postgresql'");
    expect(svc.script).toContain("endpoint='https://s3.eu-central-003.backblazeb2.com'");
    expect(evalModule(caddy, "m.systemd.timers.atticd-dump.timerConfig.OnCalendar")).toBe("daily");
  });

  it("PostgreSQL: a dump before every atticd start whose package changed, required by atticd and ordered before it", () => {
    const svc = evalModule(caddy, 'm.systemd.services."atticd-dump-before-upgrade"');
    expect(svc.before).toEqual(["atticd.service"]);
    expect(svc.requiredBy).toEqual(["atticd.service"]);
    expect(svc.after).toEqual(["postgresql.service", "postgresql-setup.service"]);
    expect(svc.environment).toEqual({ ATTICD_PACKAGE: "/nix/store/abc-attic-server" });
    expect(svc.serviceConfig).toEqual({ Type: "oneshot", UMask: "0077" });
    expect(svc.script).toBe(preUpgradeDumpScript({ dir: "/var/backup/atticd" }));
  });

  it("SQLite and local storage: sqlite3 dumps, nothing to copy, no PostgreSQL", () => {
    const text = moduleText((b) => {
      b["attic-infra:vps"].database = "sqlite";
      b["attic-infra:vps"].storage = { path: "/var/lib/atticd/storage" };
    });
    expect(evalModule(text, "m.services.atticd.settings.database.url")).toBe(
      "sqlite:///var/lib/atticd/server.db?mode=rwc",
    );
    expect(evalModule(text, 'builtins.hasAttr "postgresql" m.services')).toBe(false);
    const svc = evalModule(text, "m.systemd.services.atticd-dump");
    expect(svc.path).toContain("pkgs.sqlite");
    expect(svc.path).not.toContain("pkgs.awscli2");
    // Nothing to copy to (what the script then does: "the dump script, run for real").
    expect(svc.script).toContain("dest=''");
    expect(svc.script).toContain("database='sqlite'");
    // The deployer snapshots and restores the SQLite file itself.
    expect(evalModule(text, 'builtins.hasAttr "atticd-dump-before-upgrade" m.systemd.services')).toBe(false);
  });
});

describe.skipIf(!haveTool("sqlite3") || !haveTool("shellcheck"))("the dump script, run for real", () => {
  /**
   * A stand-in for the AWS CLI's `s3 cp|ls|rm` on a local directory (s3://bucket/key → <root>/bucket/key).
   * `ls` prints what the real CLI prints for objects under a prefix: "<date> <time> <size> <name>"
   * (AWS CLI reference, s3 ls). Not modelled: authentication, B2, multipart uploads, pagination.
   */
  const FAKE_AWS = `#!/bin/sh
set -eu
echo "aws $*" >> "$FAKE_S3/calls.log"
[ "$1" = s3 ] || exit 2
op=$2; shift 2
args=""
while [ $# -gt 0 ]; do
  case "$1" in
    --endpoint-url) shift 2 ;;
    --only-show-errors) shift ;;
    *) args="$args $1"; shift ;;
  esac
done
set -- $args
path() { echo "$FAKE_S3/\${1#s3://}"; }
case "$op" in
  cp) mkdir -p "$(dirname "$(path "$2")")"; cp "$1" "$(path "$2")" ;;
  rm) rm "$(path "$1")" ;;
  ls) d=$(path "$1"); [ -d "$d" ] || exit 1
      for f in "$d"/*; do [ -f "$f" ] && echo "2026-01-01 00:00:00 $(wc -c <"$f") $(basename "$f")"; done ;;
  *) exit 2 ;;
esac
`;
  function setup() {
    const work = mkdtempSync(path.join(tmpdir(), "dump-"));
    const bin = path.join(work, "bin");
    mkdirSync(bin);
    writeFileSync(path.join(bin, "aws"), FAKE_AWS, { mode: 0o755 });
    const s3 = path.join(work, "s3");
    mkdirSync(path.join(s3, "bucket", "dumps"), { recursive: true });
    const db = path.join(work, "server.db");
    execFileSync("sqlite3", [
      db,
      "create table cache (name text, keypair text); insert into cache values ('n3x', 'key');",
    ]);
    const dumps = path.join(work, "dumps");
    mkdirSync(dumps);
    return { work, bin, s3, db, dumps };
  }
  const script = (dumps: string, db: string, copy = true, database: "sqlite" | "postgresql" = "sqlite") =>
    dumpScript({
      database,
      sqlitePath: db,
      backup: {
        dir: dumps,
        keepDays: 14,
        ...(copy
          ? { copyTo: { bucket: "bucket", region: "r", endpoint: "https://s3.example", prefix: "dumps/" } }
          : {}),
      },
    });
  const awsCalls = (s3: string): string[] => {
    try {
      return readFileSync(path.join(s3, "calls.log"), "utf8").trim().split("\n");
    } catch {
      return [];
    }
  };

  /**
   * Stand-ins for the pre-upgrade dump: `runuser -u U -- CMD` runs CMD (util-linux runuser(1));
   * `psql -tAc` prints 1 when the database exists (FAKE_PG_DB), as a one-row, unaligned, tuples-only
   * query does; `pg_dump` writes a recognisable dump. Not modelled: PostgreSQL itself.
   */
  function pgStandIns(bin: string) {
    writeFileSync(
      path.join(bin, "runuser"),
      '#!/bin/sh\nwhile [ "$1" != -- ]; do shift; done\nshift\nexec "$@"\n',
      {
        mode: 0o755,
      },
    );
    writeFileSync(path.join(bin, "psql"), '#!/bin/sh\n[ -n "${FAKE_PG_DB:-}" ] && echo 1\nexit 0\n', {
      mode: 0o755,
    });
    writeFileSync(path.join(bin, "pg_dump"), '#!/bin/sh\necho "PGDMP $*"\n', { mode: 0o755 });
  }

  it("pre-upgrade dump: once per atticd package, none before the database exists", () => {
    const { work, bin, dumps } = setup();
    pgStandIns(bin);
    const marker = path.join(work, "state", "dumped-for");
    const run = (pkg: string, db: boolean) =>
      execFileSync("sh", ["-c", preUpgradeDumpScript({ dir: dumps, markerFile: marker })], {
        encoding: "utf8",
        env: {
          ...process.env,
          PATH: `${bin}:${process.env.PATH}`,
          ATTICD_PACKAGE: pkg,
          ...(db ? { FAKE_PG_DB: "1" } : {}),
        },
      });
    expect(run("/nix/store/a-attic", false)).toBe("no atticd database yet; nothing to dump\n");
    expect(readdirSync(dumps)).toEqual([]);
    expect(run("/nix/store/a-attic", true)).toMatch(
      /^dumped to .*atticd-\d{8}T\d{6}Z\.before-upgrade\.pgdump before atticd \/nix\/store\/a-attic starts\n$/,
    );
    expect(run("/nix/store/a-attic", true)).toBe("atticd unchanged since the last pre-upgrade dump\n");
    const [dump] = readdirSync(dumps);
    expect(execFileSync("cat", [path.join(dumps, dump!)], { encoding: "utf8" })).toBe(
      "PGDMP --format=custom atticd\n",
    );
    expect(run("/nix/store/b-attic", true)).toMatch(
      /^dumped to .* before atticd \/nix\/store\/b-attic starts\n$/,
    );
  });

  it("passes shellcheck, in both variants", () => {
    for (const database of ["postgresql", "sqlite"] as const) {
      const text = dumpScript({
        database,
        backup: {
          dir: "/var/backup/atticd",
          keepDays: 3,
          copyTo: { bucket: "b", region: "r", prefix: "p/" },
        },
      });
      execFileSync("shellcheck", ["-s", "sh", "-"], { input: text });
    }
    execFileSync("shellcheck", ["-s", "sh", "-"], {
      input: preUpgradeDumpScript({ dir: "/var/backup/atticd" }),
    });
  });

  it("dumps, copies the dump to the bucket prefix, and deletes dumps older than keepDays here and there", () => {
    const { bin, s3, db, dumps } = setup();
    const old = "atticd-20200101T000000Z.db";
    const recent = `atticd-${new Date(Date.now() - 86_400_000).toISOString().replace(/[-:]/g, "").slice(0, 15)}Z.db`;
    for (const name of [old, recent]) {
      writeFileSync(path.join(dumps, name), "old");
      writeFileSync(path.join(s3, "bucket", "dumps", name), "old");
    }
    writeFileSync(path.join(s3, "bucket", "dumps", "unrelated.txt"), "keep me");
    const out = execFileSync("sh", ["-c", script(dumps, db)], {
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, FAKE_S3: s3 },
    });
    const made = readdirSync(dumps).filter((f) => f !== old && f !== recent);
    expect(made).toHaveLength(1);
    expect(made[0]).toMatch(/^atticd-\d{8}T\d{6}Z\.db$/);
    expect(readdirSync(dumps).sort()).toEqual([recent, made[0]].sort());
    expect(readdirSync(path.join(s3, "bucket", "dumps")).sort()).toEqual(
      [recent, made[0]!, "unrelated.txt"].sort(),
    );
    expect(
      execFileSync("sqlite3", [path.join(dumps, made[0]!), "select name, keypair from cache"], {
        encoding: "utf8",
      }),
    ).toBe("n3x|key\n");
    expect(out).toContain(`copied to s3://bucket/dumps/${made[0]}`);
    expect(out).toContain(`deleted s3://bucket/dumps/${old}`);
    // Every call goes to the configured S3-compatible endpoint.
    expect(awsCalls(s3).length).toBeGreaterThan(0);
    for (const call of awsCalls(s3)) expect(call).toContain("--endpoint-url https://s3.example ");
  });

  it("without a bucket to copy to, dumps and expires on the host only, and calls no aws", () => {
    const { bin, s3, db, dumps } = setup();
    const out = execFileSync("sh", ["-c", script(dumps, db, false)], {
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, FAKE_S3: s3 },
    });
    expect(out).toMatch(/^dumped to .*atticd-\d{8}T\d{6}Z\.db\n$/);
    expect(readdirSync(dumps)).toHaveLength(1);
    expect(awsCalls(s3)).toEqual([]);
  });

  it("PostgreSQL: pg_dump's custom format, as the postgres user, named .pgdump", () => {
    const { bin, s3, db, dumps } = setup();
    pgStandIns(bin);
    const out = execFileSync("sh", ["-c", script(dumps, db, false, "postgresql")], {
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, FAKE_S3: s3 },
    });
    const [dump] = readdirSync(dumps);
    expect(dump).toMatch(/^atticd-\d{8}T\d{6}Z\.pgdump$/);
    expect(out).toBe(`dumped to ${path.join(dumps, dump!)}\n`);
    expect(readFileSync(path.join(dumps, dump!), "utf8")).toBe("PGDMP --format=custom atticd\n");
  });
});
