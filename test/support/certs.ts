/**
 * Test certificates made with the openssl CLI: a private CA, a server certificate it signed for
 * 127.0.0.1 and localhost (valid two days), one for the same names that expired in 2020 — the
 * CA itself stays valid, so the only fault is the leaf's dates — and one valid for another host. `openssl ca` is used because
 * OpenSSL 3.0's `req`/`x509` cannot set dates in the past.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

export interface TestCertificates {
  caFile: string;
  ca: string;
  valid: { key: string; cert: string };
  expired: { key: string; cert: string };
  otherHost: { key: string; cert: string };
}

export function makeTestCertificates(): TestCertificates {
  const dir = mkdtempSync(path.join(tmpdir(), "certs-"));
  const f = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

  openssl(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    f("ca.key"),
    "-out",
    f("ca.pem"),
    "-days",
    "2",
    "-subj",
    "/CN=attic-infra test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  );
  writeFileSync(f("index.txt"), "");
  writeFileSync(f("serial"), "1000\n");
  writeFileSync(
    f("ca.cnf"),
    `[ca]
default_ca = test
[test]
database = ${f("index.txt")}
new_certs_dir = ${dir}
serial = ${f("serial")}
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
`,
  );
  const leaf = (name: string, dates: string[], names = "IP:127.0.0.1,DNS:localhost") => {
    openssl(
      "req",
      "-new",
      ...ec,
      "-keyout",
      f(`${name}.key`),
      "-out",
      f(`${name}.csr`),
      "-subj",
      "/CN=localhost",
      "-addext",
      `subjectAltName=${names}`,
    );
    openssl(
      "ca",
      "-batch",
      "-notext",
      "-config",
      f("ca.cnf"),
      "-cert",
      f("ca.pem"),
      "-keyfile",
      f("ca.key"),
      "-in",
      f(`${name}.csr`),
      "-out",
      f(`${name}.pem`),
      ...dates,
    );
    return { key: readFileSync(f(`${name}.key`), "utf8"), cert: readFileSync(f(`${name}.pem`), "utf8") };
  };
  return {
    caFile: f("ca.pem"),
    ca: readFileSync(f("ca.pem"), "utf8"),
    valid: leaf("valid", ["-days", "2"]),
    expired: leaf("expired", ["-startdate", "20200101000000Z", "-enddate", "20200201000000Z"]),
    otherHost: leaf("other", ["-days", "2"], "DNS:attic.example.com"),
  };
}
