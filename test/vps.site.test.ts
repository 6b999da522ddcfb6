/**
 * The vps site as the program registers it (offline synth of Pulumi.vps.yaml): what reaches the
 * host, in which order, and what the stack exports. The deploy itself (the shared NixOS host
 * deployer) is exercised over real SSH by the deployer's own tests.
 */
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { createPrivateKey, createPublicKey } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { parse as parseToml } from "smol-toml";
import { beforeAll, describe, expect, it } from "vitest";
import { multiSiteNixConfSnippet } from "../components/attic/nixConf";
import type { CacheOutput } from "../components/attic/server";
import { certificateWaitScript, vpsModuleText, vpsSettings } from "../components/vps/module";
import { vpsDeployTimes } from "../components/vps/site";
import { loadConfig } from "../config/load";
import { exampleBlocks, exampleConfig, synthExample, toConfigMap } from "./support/stacks";
import { haveTool } from "./support/tools";
import { type SynthResult, synth } from "../ci/commands/synth/harness";
import { loadProviderInputs } from "../ci/commands/synth/providerInputs";
import { FIXTURE_SIGNING_KEY_PEM } from "../ci/commands/synth/mocks";
import { FakeAtticd } from "./support/fakeAtticd";

let vps: SynthResult;
const config = () => loadConfig(exampleConfig("vps")).config;
const byName = (r: SynthResult, name: string) => r.resources.find((e) => e.name === name)!;

beforeAll(async () => {
  vps = await synthExample("vps", true);
});

describe("the vps example stack (synth)", () => {
  it("registers the vps site on the shared NixOS host deployer and nothing else", () => {
    expect(Object.keys(vps.outputs).sort()).toEqual(["signingKeyUrn", "sites", "tokenPublicKey", "vps"]);
    const types = vps.resources.map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(["attic:vps:Site", "attic:nixos:Host"]));
    expect(types.filter((t) => t.startsWith("aws:") || t.startsWith("attic:office"))).toEqual([]);
  });

  it("exports what the other sites export: endpoint, caches with public keys, tokens, nix.conf, netrc", () => {
    const out = vps.outputs.vps as Record<string, any>;
    expect(Object.keys(out).sort()).toEqual([
      "caches",
      "endpoint",
      "modulePath",
      "netrc",
      "nixConf",
      "pullTokens",
      "tokens",
    ]);
    expect(out.endpoint).toBe("https://cache.example.com/");
    expect(out.caches.n3x.substituter).toBe("https://cache.example.com/n3x");
    expect(out.caches.n3x.publicKey).toMatch(/^n3x:/);
    expect(out.nixConf).toBe(
      `extra-substituters = https://cache.example.com/n3x\nextra-trusted-public-keys = ${out.caches.n3x.publicKey}\n`,
    );
    expect(Object.keys(out.tokens)).toEqual(["ci"]);
    expect(out.netrc.ci).toMatch(/^machine cache\.example\.com password ey/);
  });

  it("the module on the host is the one generated from config, and the TOML matches the settings", () => {
    const c = config();
    expect(vps.files["vps/atticd.nix"]).toBe(vpsModuleText(c.attic!, c.vps!, "vps"));
    expect(parseToml(vps.files["vps/atticd-monolithic.toml"]!)).toEqual(vpsSettings(c.attic!, c.vps!));
  });

  it("the B2 keys and the signing key go to the environment file only, never the module", () => {
    const env = vps.files["vps/atticd.env"]!;
    expect(env).toMatch(
      /^ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64=\S+\nAWS_ACCESS_KEY_ID=SYNTHSECRET-config-\w+\n/,
    );
    expect(env).toMatch(/\nAWS_SECRET_ACCESS_KEY=SYNTHSECRET-config-\w+\n$/);
    expect(vps.files["vps/atticd.nix"]).not.toContain("SYNTHSECRET");
  });

  it("the deploy health-checks atticd on loopback with the domain as Host (allowed-hosts would refuse any other)", () => {
    const deploy = vps.files["vps/scripts/deploy.sh"]!;
    expect(deploy).toContain("HEALTH_URL='http://127.0.0.1:8080/'");
    expect(deploy).toContain("HEALTH_HOST='cache.example.com'");
    expect(vps.files["vps/scripts/confirm.sh"]).toContain("HEALTH_HOST='cache.example.com'");
    expect(vps.files["vps/scripts/rollback.sh"]).toContain("HEALTH_HOST='cache.example.com'");
  });

  it("order: host check → deploy (confirmed) → certificate wait → caches over HTTPS", () => {
    const host = byName(vps, "vps-nixos-host");
    const deploy = byName(vps, "vps-nixos-deploy");
    const cert = byName(vps, "vps-certificate");
    const cache = byName(vps, "vps-attic-cache-n3x");
    expect(deploy.options.dependsOn).toContain(host.urn);
    expect(cert.options.dependsOn).toEqual([deploy.urn]);
    expect(cache.options.dependsOn).toEqual([cert.urn]);
    expect(cache.inputs.apiEndpoint).toBe("https://cache.example.com/");
    expect(cache.inputs.waitSeconds).toBe(300 + 120);
  });

  it("the certificate wait runs again with every deploy, bounded by certificateWaitSeconds", () => {
    const cert = byName(vps, "vps-certificate");
    const deploy = byName(vps, "vps-nixos-deploy");
    expect(cert.inputs.triggers).toEqual(deploy.inputs.triggers);
    expect(vps.files["vps/scripts/certificate.sh"]).toBe(
      certificateWaitScript({ domain: "cache.example.com", proxy: "caddy", waitSeconds: 300 }),
    );
    expect(vps.files["vps/scripts/certificate.sh"]).toContain("wait_seconds='300'");
  });

  it("the certificate step connects as the host deployer does, with pulumi-command's fields only (it refuses any other)", () => {
    const declared = Object.keys(
      loadProviderInputs().types["command/types/input:remote.ConnectionArgs"]!.properties,
    );
    const connection = byName(vps, "vps-certificate").inputs.connection as Record<string, unknown>;
    expect(Object.keys(connection).filter((k) => !declared.includes(k))).toEqual([]);
    expect(connection).toEqual(byName(vps, "vps-nixos-host").inputs.connection);
    expect(Object.keys(connection).sort()).toEqual([
      "dialErrorLimit",
      "host",
      "hostKey",
      "perDialTimeout",
      "port",
      "user",
    ]);
  });

  it("the deployer gets the configured limits", () => {
    expect(vpsDeployTimes(config().vps!)).toEqual({
      buildSeconds: 1800,
      activationSeconds: 90,
      healthSeconds: 30,
      windowSeconds: 180,
    });
  });
});

describe("the certificate wait script", () => {
  /** A stand-in for curl: records its arguments, answers as FAKE_CURL_STATUS says (0: a valid certificate). */
  function run(proxy: "caddy" | "nginx", status: number) {
    const dir = mkdtempSync(path.join(tmpdir(), "certificate-"));
    writeFileSync(
      path.join(dir, "curl"),
      `#!/bin/sh\nprintf '%s\\n' "$@" > "${dir}/args"\necho "curl: (60) SSL certificate problem" >&2\nexit ${status}\n`,
      { mode: 0o755 },
    );
    const script = certificateWaitScript({ domain: "cache.example.com", proxy, waitSeconds: 0 });
    const r = spawnSync("/bin/sh", ["-c", script], {
      env: { PATH: `${dir}:${process.env.PATH}` },
      encoding: "utf8",
    });
    return { ...r, args: readFileSync(path.join(dir, "args"), "utf8").split("\n") };
  }

  it("asks the proxy on loopback for https://<domain>/, whatever the host's own DNS says", () => {
    const r = run("caddy", 0);
    expect(r.status, r.stderr).toBe(0);
    expect(r.args).toEqual(expect.arrayContaining(["--resolve", "cache.example.com:443:127.0.0.1"]));
    expect(r.args).toContain("https://cache.example.com/");
    expect(r.stdout).toBe("https://cache.example.com/ answers with a valid certificate\n");
  });

  it("gives up after the wait, naming the domain, curl's reason and the proxy's unit", () => {
    for (const [proxy, unit] of [
      ["caddy", "caddy"],
      ["nginx", "acme-cache.example.com"],
    ] as const) {
      const r = run(proxy, 60);
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(
        `attic-infra: cache.example.com has no valid certificate after 0 s (curl: (60) SSL certificate problem). atticd itself is deployed. Check that the A/AAAA records of cache.example.com point at this host and that port 80 is reachable (journalctl -u ${unit}), then run pulumi up again.\n`,
      );
    }
  });

  it.skipIf(!haveTool("shellcheck"))("passes shellcheck", () => {
    for (const proxy of ["caddy", "nginx"] as const)
      execFileSync("shellcheck", ["-s", "sh", "-"], {
        input: certificateWaitScript({ domain: "cache.example.com", proxy, waitSeconds: 60 }),
      });
  });
});

describe("nix.conf across sites: office (LAN), then vps, then aws, through priorities", () => {
  const site = (host: string, key: string): Record<string, CacheOutput> => ({
    n3x: { substituter: `https://${host}/n3x`, publicKey: `n3x:${key}`, public: true, priority: 41 },
    fw: { substituter: `https://${host}/fw`, publicKey: `fw:${key}`, public: false, priority: 30 },
  });
  const sites = [
    { site: "aws" as const, caches: site("aws.example.com", "A") },
    { site: "vps" as const, caches: site("cache.example.com", "V") },
    { site: "office" as const, caches: site("attic.lan", "O") },
  ];
  const lines = (forSite: "office" | "vps" | "aws") => multiSiteNixConfSnippet(sites, forSite).split("\n");

  it("the office's clients get every site, the same cache nearer first, each cache's priority kept", () => {
    expect(lines("office")).toEqual([
      "extra-substituters = https://attic.lan/fw?priority=30 https://cache.example.com/fw?priority=31 https://aws.example.com/fw?priority=32 https://attic.lan/n3x?priority=41 https://cache.example.com/n3x?priority=42 https://aws.example.com/n3x?priority=43",
      "extra-trusted-public-keys = fw:O fw:V fw:A n3x:O n3x:V n3x:A",
      "",
    ]);
  });

  it("the vps's clients never get the office (they may not reach the LAN); aws's get aws alone", () => {
    expect(lines("vps")[0]).toBe(
      "extra-substituters = https://cache.example.com/fw?priority=31 https://aws.example.com/fw?priority=32 https://cache.example.com/n3x?priority=42 https://aws.example.com/n3x?priority=43",
    );
    expect(lines("aws")[0]).toBe(
      "extra-substituters = https://aws.example.com/fw?priority=32 https://aws.example.com/n3x?priority=43",
    );
  });

  it("a stack with the office and vps sites exports those snippets", async () => {
    const office = exampleBlocks("office") as Record<string, any>;
    const v = exampleBlocks("vps") as Record<string, any>;
    Object.assign(v["attic-infra:vps"].storage.s3, {
      accessKeyId: "K003example",
      secretAccessKey: "b2secret",
    });
    const r = await synth({
      stack: "both",
      config: toConfigMap({
        "attic-infra:sites": ["office", "vps"],
        "attic-infra:attic": office["attic-infra:attic"],
        "attic-infra:office": office["attic-infra:office"],
        "attic-infra:vps": v["attic-infra:vps"],
      }),
    });
    expect((r.outputs.office as { nixConf: string }).nixConf.split("\n")[0]).toBe(
      "extra-substituters = http://attic.lan:8080/n3x?priority=30 https://cache.example.com/n3x?priority=31",
    );
    expect((r.outputs.vps as { nixConf: string }).nixConf.split("\n")[0]).toBe(
      "extra-substituters = https://cache.example.com/n3x?priority=31",
    );
  });
});

describe.skipIf(!haveTool("curl"))("an upper-case domain, end to end", () => {
  /**
   * curl, which Nix downloads with, sends the host as written in the URL (it does not lower-case
   * it), the proxy passes that Host on, and atticd compares it with allowed-hosts exactly. Here
   * curl reaches the atticd stand-in configured with the synthesized TOML, with `--connect-to` in
   * place of DNS and plain HTTP in place of the proxy's TLS: the Host atticd sees is the one curl
   * sent for the URL's host.
   */
  it("the config lower-cases it: allowed-hosts, api-endpoint, the health check and every URL handed out agree, and curl gets through", async () => {
    const b = exampleBlocks("vps") as Record<string, any>;
    Object.assign(b["attic-infra:vps"].storage.s3, {
      accessKeyId: "K003example",
      secretAccessKey: "b2secret",
    });
    b["attic-infra:vps"].domain = "Cache.Example.COM";
    const r = await synth({ stack: "vps", config: toConfigMap(b), showSecrets: true });
    const toml = parseToml(r.files["vps/atticd-monolithic.toml"]!) as Record<string, any>;
    expect([toml["allowed-hosts"], toml["api-endpoint"]]).toEqual([
      ["cache.example.com"],
      "https://cache.example.com/",
    ]);
    expect(r.files["vps/scripts/deploy.sh"]).toContain("HEALTH_HOST='cache.example.com'");
    expect(r.files["vps/scripts/certificate.sh"]).toContain("cache.example.com");
    expect(r.files["vps/scripts/certificate.sh"]).not.toMatch(/Cache\.Example/);
    const out = r.outputs.vps as {
      endpoint: string;
      caches: Record<string, { substituter: string }>;
      netrc: Record<string, string>;
    };
    expect(out.endpoint).toBe("https://cache.example.com/");
    expect(out.caches.n3x!.substituter).toBe("https://cache.example.com/n3x");
    expect(out.netrc.ci).toMatch(/^machine cache\.example\.com password /);

    const atticd = new FakeAtticd(
      createPublicKey(createPrivateKey(FIXTURE_SIGNING_KEY_PEM))
        .export({ type: "spki", format: "pem" })
        .toString(),
    );
    atticd.allowedHosts = toml["allowed-hosts"];
    atticd.apiEndpoint = toml["api-endpoint"];
    atticd.caches.set("n3x", {
      is_public: true,
      store_dir: "/nix/store",
      priority: 41,
      upstream_cache_key_names: [],
      retention_period: "Global",
      public_key: "n3x:AAAA",
    });
    const port = await atticd.listen();
    // Asynchronous: the stand-in answers from this process's event loop.
    const curl = async (url: string) => {
      const u = new URL(url);
      const { stdout } = await promisify(execFile)("curl", [
        "-sS",
        "--max-time",
        "60",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "--connect-to",
        `${u.hostname}:80:127.0.0.1:${port}`,
        url,
      ]);
      const lines = stdout.split("\n");
      return { status: Number(lines.pop()), body: lines.join("\n") };
    };
    // The proxy's TLS left out: the same host name over http, port 80 (no port in the Host header).
    const asServed = (url: string) => url.replace(/^https:/, "http:");
    try {
      expect(await curl(asServed(`${out.caches.n3x!.substituter}/nix-cache-info`))).toMatchObject({
        status: 200,
      });
      expect(
        JSON.parse((await curl(asServed(`${out.endpoint}n3x/attic-cache-info`))).body).substituter_endpoint,
      ).toBe(out.caches.n3x!.substituter);
      // What a nix.conf with the domain as first typed would send: atticd refuses it.
      const typed = await curl("http://Cache.Example.COM/n3x/nix-cache-info");
      expect([typed.status, JSON.parse(typed.body).message]).toEqual([
        400,
        "General request error: Bad Host",
      ]);
      expect(atticd.requests.map((q) => q.host)).toEqual([
        "cache.example.com",
        "cache.example.com",
        "Cache.Example.COM",
      ]);
    } finally {
      await atticd.close();
    }
  });
});
