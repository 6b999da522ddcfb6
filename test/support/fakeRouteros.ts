/**
 * A RouterOS-subset stand-in: the switch the MikroTik tests deploy to. It runs behind the test sshd:
 * its ForceCommand (SFTP_GATE) hands the SFTP subsystem to sftp-server in the switch's file store and
 * every exec request — one CLI line — to this program (compiled to JavaScript by fakeSwitch.ts).
 * State lives in <state dir>/state.json, files in <state dir>/files.
 *
 * What it models, and from which MikroTik page (help.mikrotik.com):
 * - SSH: one exec request runs one line; "it is not possible to send multiline commands via SSH",
 *   so of a multi-line exec only the first line runs. The exit status is always 0, errors are text.
 *   SFTP needs the `ftp` policy in the user's group (User groups: the built-in `write` group has
 *   `!ftp`); without it the subsystem is refused. A group without `write` gets `not enough
 *   permissions` on any change.
 * - Scripting: a script is parsed completely before it runs: an unknown menu or command is
 *   `bad command name`, an unknown argument `expected end of command`, a missing required one
 *   `missing value(s) of argument(s)`, a bad value `invalid value for argument` / `input does not
 *   match any value of`; all with (line L column C), and nothing runs. Runtime errors and `:error`
 *   stop the script at that point (what ran stays changed). `;` and newlines separate commands,
 *   `{}` blocks, `[]` command substitution, `()` expressions with = != < > && || ! . and ~,
 *   `:if :put :error :global :local :set :foreach :len :pick`, `$var`, menu-relative commands after
 *   a bare menu line (the export format).
 * - Menus: add/set/remove/print/get/find (`find where` with property names, `!=`, `dynamic`), the
 *   `comment` property absent on dynamic entries (so `comment!="x"` matches them), `export terse
 *   where …` only from RouterOS 7.13 (before it `where` is an unknown argument), `export verbose`.
 * - Bridging and Switching / Bridge VLAN Table: every bridge port has `hw=yes`, but only ONE bridge
 *   per switch chip is offloaded (`hw-offload`); RouterOS shows a dynamic bridge VLAN entry for each
 *   PVID whose ports no static entry lists; turning `vlan-filtering` on or off on the offloaded
 *   bridge resets the switch chip (counted in `chipResets`). The default configuration: bridge
 *   `bridge` (comment defconf) with ether1..ether24 and sfp-sfpplus1..2 as hardware-offloaded ports,
 *   192.168.88.1/24 on it, no firewall rules.
 * - DHCP server leases: dynamic leases (no comment, `dynamic=yes`) and `make-static`.
 * - DNS: the global `/ip dns` settings `servers` and `allow-remote-requests`.
 * - Firewall filter: rules in order, `place-before=<id>` on add.
 * - System backup: `save` stores the configuration (not the file store, not global variables) in a
 *   `.backup` file; `load` restores it and "reboots" (globals are lost). Scheduler: entries the test
 *   fires with `fireScheduler` (RouterOS runs `on-event` on its interval). `/system script run`.
 * - `/import file-name=` runs a file from the file store as one script (so `{}` blocks work) and
 *   prints "Script file loaded and executed successfully"; with `verbose=yes` it runs line by line,
 *   each line on its own (a `{` left open on a line is a syntax error), continuing after errors.
 *
 * What it does NOT prove: RouterOS's exact wording beyond the error strings above; that RouterOS
 * accepts each value as the scripts write it (only the properties the scripts use are known here, so
 * a script using anything else fails here, but a value this accepts might still be refused by a
 * switch); `print` output (not RouterOS's format); `vlan-ids` lists (one VLAN id only); which bridge
 * a real chip offloads when several qualify (here: the bridge of the first hw=yes port); that
 * `/import` reads the whole file before running it (assumed: the uploaded file removes itself first);
 * the data plane (that frames flow, that DNS answers, that vlan-filtering keeps the management path:
 * the stand-in checks the PVID rule the scripts check, nothing more); the timing of scheduler runs
 * and of the reboot after `backup load`; concurrency between sessions.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";

// ------------------------------------------------------------------------------------------------
// State
// ------------------------------------------------------------------------------------------------

export type Scalar = string | number | boolean;
export type Props = Record<string, Scalar>;
export interface Item {
  id: string;
  dynamic: boolean;
  props: Props;
}
export interface Config {
  menus: Record<string, Item[]>;
  settings: Record<string, Props>;
}
export interface RouterState extends Config {
  version: string;
  nextId: number;
  globals: Record<string, Value>;
  users: { name: string; group: string }[];
  groups: { name: string; policy: string }[];
  chipResets: number;
  reboots: number;
}

type Kind = "str" | "num" | "bool" | "iface" | "bridge" | { oneOf: string[] };
interface MenuDef {
  props: Record<string, Kind>;
  required?: string[];
  defaults?: Props;
  /** Settings menus have one unnamed set of properties instead of items. */
  settings?: boolean;
  readOnly?: string[];
  extra?: string[];
}

const ETHERNET = [...Array.from({ length: 24 }, (_, i) => `ether${i + 1}`), "sfp-sfpplus1", "sfp-sfpplus2"];
const FRAME_TYPES = {
  oneOf: ["admit-all", "admit-only-untagged-and-priority-tagged", "admit-only-vlan-tagged"],
};

const MENUS: Record<string, MenuDef> = {
  "interface bridge": {
    props: { name: "str", "vlan-filtering": "bool", pvid: "num", comment: "str" },
    required: ["name"],
    defaults: { "vlan-filtering": false, pvid: 1 },
  },
  "interface bridge port": {
    props: {
      interface: "iface",
      bridge: "bridge",
      pvid: "num",
      "frame-types": FRAME_TYPES,
      hw: "bool",
      comment: "str",
    },
    required: ["interface", "bridge"],
    defaults: { pvid: 1, "frame-types": "admit-all", hw: true },
    readOnly: ["hw-offload"],
  },
  "interface bridge vlan": {
    props: { bridge: "bridge", "vlan-ids": "num", tagged: "str", untagged: "str", comment: "str" },
    required: ["bridge", "vlan-ids"],
    defaults: { tagged: "", untagged: "" },
  },
  "interface vlan": {
    props: { name: "str", interface: "iface", "vlan-id": "num", comment: "str" },
    required: ["name", "interface", "vlan-id"],
  },
  "ip address": {
    props: { address: "str", interface: "iface", comment: "str" },
    required: ["address", "interface"],
  },
  "ip pool": { props: { name: "str", ranges: "str", comment: "str" }, required: ["name", "ranges"] },
  "ip dhcp-server": {
    props: {
      name: "str",
      interface: "iface",
      "address-pool": "str",
      "lease-time": "str",
      disabled: "bool",
      comment: "str",
    },
    required: ["name", "interface"],
    defaults: { disabled: true },
  },
  "ip dhcp-server network": {
    props: { address: "str", gateway: "str", "dns-server": "str", domain: "str", comment: "str" },
    required: ["address"],
  },
  "ip dhcp-server lease": {
    props: { "mac-address": "str", address: "str", server: "str", comment: "str" },
    required: ["mac-address", "address"],
    extra: ["make-static"],
  },
  "ip dns static": {
    props: { name: "str", address: "str", type: { oneOf: ["A", "AAAA", "CNAME"] }, comment: "str" },
    required: ["name", "address"],
    defaults: { type: "A" },
  },
  "ip firewall filter": {
    props: {
      chain: "str",
      action: { oneOf: ["accept", "drop", "reject", "passthrough"] },
      protocol: { oneOf: ["tcp", "udp", "icmp"] },
      "dst-port": "str",
      "in-interface": "iface",
      comment: "str",
    },
    required: ["chain"],
    defaults: { action: "accept" },
  },
  "system scheduler": {
    props: { name: "str", interval: "str", "on-event": "str", comment: "str" },
    required: ["name"],
  },
  "system script": {
    props: { name: "str", source: "str", comment: "str" },
    required: ["name"],
    extra: ["run"],
  },
  "ip dns": {
    props: { servers: "str", "allow-remote-requests": "bool" },
    settings: true,
    defaults: { servers: "", "allow-remote-requests": false },
  },
  "system resource": { props: {}, settings: true, readOnly: ["version", "board-name"] },
  "system backup": { props: {}, settings: true, extra: ["save", "load"] },
  file: { props: { name: "str" }, readOnly: ["type", "size"] },
  user: { props: { name: "str", group: "str" }, required: ["name", "group"] },
  "user group": { props: { name: "str", policy: "str" }, required: ["name"] },
};
/** Menus whose items are configuration (backed up, exported). */
const CONFIG_MENUS = Object.keys(MENUS).filter(
  (m) => !MENUS[m]!.settings && !["file", "user", "user group"].includes(m),
);

export function defaultState(version = "7.16.1", user = "admin", group = "full"): RouterState {
  let id = 1;
  const item = (props: Props): Item => ({
    id: `*${(id++).toString(16).toUpperCase()}`,
    dynamic: false,
    props,
  });
  const menus: Record<string, Item[]> = Object.fromEntries(CONFIG_MENUS.map((m) => [m, [] as Item[]]));
  menus["interface bridge"] = [
    item({ name: "bridge", "vlan-filtering": false, pvid: 1, comment: "defconf" }),
  ];
  menus["interface bridge port"] = ETHERNET.map((e) =>
    item({
      interface: e,
      bridge: "bridge",
      pvid: 1,
      "frame-types": "admit-all",
      hw: true,
      comment: "defconf",
    }),
  );
  menus["ip address"] = [item({ address: "192.168.88.1/24", interface: "bridge", comment: "defconf" })];
  return {
    version,
    nextId: id,
    menus,
    settings: { "ip dns": { servers: "", "allow-remote-requests": false } },
    globals: {},
    users: [{ name: user, group }],
    groups: [
      {
        name: "full",
        policy:
          "local,telnet,ssh,ftp,reboot,read,write,policy,test,winbox,password,web,sniff,sensitive,api,romon,rest-api",
      },
      {
        name: "write",
        policy:
          "local,telnet,ssh,reboot,read,write,test,winbox,password,web,sniff,api,romon,rest-api,!ftp,!policy,!sensitive",
      },
      {
        name: "read",
        policy:
          "local,telnet,ssh,reboot,read,test,winbox,password,web,sniff,api,romon,rest-api,!ftp,!write,!policy,!sensitive",
      },
    ],
    chipResets: 0,
    reboots: 0,
  };
}

export const stateFile = (dir: string) => path.join(dir, "state.json");
export const filesDir = (dir: string) => path.join(dir, "files");
export function loadState(dir: string): RouterState {
  return JSON.parse(readFileSync(stateFile(dir), "utf8")) as RouterState;
}
export function saveState(dir: string, s: RouterState): void {
  mkdirSync(filesDir(dir), { recursive: true });
  writeFileSync(stateFile(dir), JSON.stringify(s, null, 1));
  // For the SFTP gate in front of sftp-server (SFTP_GATE): the users whose group has `ftp`.
  const ftp = s.users.filter((u) => new Router(s, dir, u.name).hasFtp()).map((u) => `${u.name}\n`);
  writeFileSync(path.join(dir, "sftp-users"), ftp.join(""));
}

/**
 * The ForceCommand: SFTP goes to sftp-server in the file store, for users with the `ftp` policy
 * (RouterOS refuses the subsystem otherwise); every exec request to this program. The switch's
 * state directory is the session's ATTIC_TEST_SWITCH (bound per scenario when the session
 * authenticates: TestSshd.scenario). A test can make it refuse a second session on one connection,
 * as an SSH server without multiplexing would.
 */
export const SFTP_GATE = (sftpServer: string, program: string) => `#!/bin/sh
dir=\${ATTIC_TEST_SWITCH:?this session has no switch: TestSshd.scenario binds ATTIC_TEST_SWITCH}
# With the file one-session-per-connection: a second session on a connection is refused.
if [ -e "$dir/one-session-per-connection" ]; then
  connection=$(echo "$SSH_CONNECTION" | cut -d ' ' -f 2)
  if grep -q -x -F "$connection" "$dir/connections" 2>/dev/null; then exit 255; fi
  echo "$connection" >> "$dir/connections"
fi
case "$SSH_ORIGINAL_COMMAND" in
  ${sftpServer})
    grep -q -x -F "$USER" "$dir/sftp-users" || exit 1
    exec ${sftpServer} -d "${filesDir("$dir")}" ;;
esac
export FAKE_ROUTEROS_STATE="$dir"
exec ${program}
`;
/** The configuration as a test compares it: items with their properties, settings. */
export function configOf(s: RouterState): Config {
  return structuredClone({ menus: s.menus, settings: s.settings });
}

// ------------------------------------------------------------------------------------------------
// Values, errors
// ------------------------------------------------------------------------------------------------

export type Value = Scalar | null | Value[];
class RosError extends Error {}
const at = (line: number, col: number) => `(line ${line} column ${col})`;

function str(v: Value): string {
  if (v === null) return "";
  if (Array.isArray(v)) return v.map(str).join(";");
  return String(v);
}
function eq(a: Value, b: Value): boolean {
  if (typeof a === "boolean" || typeof b === "boolean") return toBool(a) === toBool(b);
  return str(a) === str(b);
}
function toBool(v: Value): boolean | undefined {
  if (typeof v === "boolean") return v;
  if (v === "yes" || v === "true") return true;
  if (v === "no" || v === "false" || v === "" || v === null) return false;
  return undefined;
}
const versionAtLeast = (v: string, major: number, minor: number) => {
  const [a, b] = v.split(/[.\s]/).map(Number) as [number, number];
  return a > major || (a === major && b >= minor);
};

// ------------------------------------------------------------------------------------------------
// Parser: source text → statements (the whole script is parsed before anything runs)
// ------------------------------------------------------------------------------------------------

type Expr =
  | { t: "lit"; v: Value }
  | { t: "word"; w: string }
  | { t: "var"; name: string }
  | { t: "sub"; body: Stmt[] }
  | { t: "block"; body: Stmt[] }
  | { t: "op"; op: string; a: Expr; b: Expr }
  | { t: "not"; a: Expr };
type Arg = { name?: string; value: Expr };
type Stmt =
  | { t: "block"; body: Stmt[] }
  | { t: "cmd"; menu: string; cmd: string; args: Arg[]; where?: Expr; line: number; col: number }
  | { t: "ice"; cmd: string; args: Arg[]; line: number; col: number }
  | { t: "nop" };

const ICE = ["put", "if", "error", "global", "local", "set", "foreach", "len", "pick"];
const ROOT_CMDS = ["import", "export"];
const LIST_CMDS = ["add", "set", "remove", "print", "get", "find", "export"];
const SETTINGS_CMDS = ["set", "get", "print", "export"];

class Parser {
  pos = 0;
  /** The menu a relative command inside `[]` refers to: the enclosing command's. */
  ctxMenu = "";
  line = 1;
  lineStart = 0;
  private readonly src: string;
  private readonly version: string;
  constructor(src: string, version: string) {
    this.src = src;
    this.version = version;
  }

  col(): number {
    return this.pos - this.lineStart + 1;
  }
  fail(msg: string): never {
    throw new RosError(`${msg} ${at(this.line, this.col())}`);
  }
  peek(): string {
    return this.src[this.pos] ?? "";
  }
  next(): string {
    const c = this.src[this.pos++] ?? "";
    if (c === "\n") {
      this.line++;
      this.lineStart = this.pos;
    }
    return c;
  }
  /** Spaces and `\`-newline continuations; newlines too when `newlines`. */
  ws(newlines = false): void {
    for (;;) {
      const c = this.peek();
      if (c === " " || c === "\t" || c === "\r") this.next();
      else if (c === "\\" && this.src[this.pos + 1] === "\n") {
        this.next();
        this.next();
      } else if (newlines && c === "\n") this.next();
      else return;
    }
  }
  atEnd(): boolean {
    const c = this.peek();
    return c === "" || c === "\n" || c === ";" || c === "}" || c === "]";
  }

  /** Statements until `close` (`}` or `]`) or the end of the text. */
  script(close = "", menu = ""): Stmt[] {
    const out: Stmt[] = [];
    for (;;) {
      this.ws(true);
      const c = this.peek();
      if (c === ";") {
        this.next();
        continue;
      }
      if (c === "") {
        if (close) this.fail("syntax error");
        return out;
      }
      if (c === close) {
        this.next();
        return out;
      }
      if (c === "}" || c === "]") this.fail("syntax error");
      if (c === "#") {
        while (this.peek() !== "\n" && this.peek() !== "") this.next();
        continue;
      }
      const s = this.statement(menu);
      if (s.t === "nop" && "menu" in s) menu = (s as { menu: string }).menu;
      else out.push(s);
      this.ws();
      if (!this.atEnd()) this.fail("expected end of command");
    }
  }

  statement(menu: string): Stmt {
    const line = this.line;
    const col = this.col();
    if (this.peek() === "{") {
      this.next();
      return { t: "block", body: this.script("}", menu) };
    }
    this.ctxMenu = menu;
    if (this.peek() === ":") {
      this.next();
      const w = this.word();
      if (!ICE.includes(w)) throw new RosError(`bad command name ${w} ${at(line, col + 1)}`);
      return { t: "ice", cmd: w, args: this.args(null), line, col };
    }
    let path: string[] = menu ? menu.split(" ") : [];
    if (this.peek() === "/") {
      path = [];
      this.next();
    }
    for (;;) {
      this.ws();
      if (this.atEnd()) return { t: "nop", menu: path.join(" ") } as Stmt;
      const wc = this.col();
      const w = this.word();
      const candidate = [...path, w].join(" ");
      if (Object.keys(MENUS).some((m) => m === candidate || m.startsWith(`${candidate} `))) {
        path.push(w);
        if (this.peek() === "/") this.next();
        continue;
      }
      const m = path.join(" ");
      const def = MENUS[m];
      const cmds =
        m === ""
          ? ROOT_CMDS
          : def?.settings
            ? [...SETTINGS_CMDS, ...(def.extra ?? [])]
            : [...LIST_CMDS, ...(def?.extra ?? [])];
      if (!cmds.includes(w) || (m === "system backup" && !["save", "load"].includes(w)))
        throw new RosError(`bad command name ${w} ${at(this.line, wc)}`);
      const stmt: Stmt = { t: "cmd", menu: m, cmd: w, args: [], line, col };
      this.ctxMenu = m;
      stmt.args = this.args(stmt);
      this.ctxMenu = menu;
      this.validate(stmt);
      return stmt;
    }
  }

  word(): string {
    let w = "";
    while (/[A-Za-z0-9_.*-]/.test(this.peek()) && this.peek() !== "") w += this.next();
    if (!w) this.fail("syntax error");
    return w;
  }

  args(stmt: Extract<Stmt, { t: "cmd" }> | null): Arg[] {
    const out: Arg[] = [];
    for (;;) {
      this.ws();
      if (this.atEnd()) return out;
      const m = /^[A-Za-z][A-Za-z0-9_.-]*/.exec(this.src.slice(this.pos));
      if (m) {
        const w = m[0];
        if (stmt && w === "where" && ["find", "print", "export", "remove"].includes(stmt.cmd)) {
          // Exporting part of a menu (`export … where`) exists only from RouterOS 7.13.
          if (stmt.cmd === "export" && !versionAtLeast(this.version, 7, 13))
            this.fail("expected end of command");
          this.pos += w.length;
          stmt.where = this.expr(true);
          continue;
        }
        if (this.src[this.pos + w.length] === "=") {
          this.pos += w.length + 1;
          out.push({ name: w, value: this.atom(false) });
          continue;
        }
      }
      out.push({ value: this.atom(false) });
    }
  }

  /** One value: "string", [subst], (expr), {block}, $var, number or bare word. */
  atom(props: boolean): Expr {
    this.ws();
    const c = this.peek();
    if (c === '"') return this.quoted();
    if (c === "[") {
      this.next();
      const outer = this.ctxMenu;
      const body = this.script("]", outer);
      this.ctxMenu = outer;
      return { t: "sub", body };
    }
    if (c === "(") {
      this.next();
      const e = this.expr(props);
      this.ws();
      if (this.next() !== ")") this.fail("syntax error");
      return e;
    }
    if (c === "{") {
      this.next();
      const outer = this.ctxMenu;
      const body = this.script("}", outer);
      this.ctxMenu = outer;
      return { t: "block", body };
    }
    if (c === "$") {
      this.next();
      return { t: "var", name: this.word() };
    }
    let w = "";
    while (
      !/[\s;\]}()="[]/.test(this.peek()) &&
      this.peek() !== "" &&
      !(props && /[&|!<>~]/.test(this.peek()))
    )
      w += this.next();
    if (!w) this.fail("syntax error");
    if (/^-?\d+$/.test(w)) return { t: "lit", v: Number(w) };
    return { t: "word", w };
  }

  /** A double-quoted string; an unescaped `$name` inside it is the variable's value. */
  quoted(): Expr {
    this.next();
    let e: Expr | undefined;
    let s = "";
    const push = (x: Expr) => (e = e ? { t: "op", op: ".", a: e, b: x } : x);
    for (;;) {
      const c = this.next();
      if (c === "") this.fail("syntax error");
      if (c === '"') {
        push({ t: "lit", v: s });
        return e!;
      }
      if (c === "\\") {
        const x = this.next();
        if (x === "n") s += "\n";
        else if (x === "t") s += "\t";
        else if (x !== "\n") s += x;
      } else if (c === "$" && /[A-Za-z]/.test(this.peek())) {
        push({ t: "lit", v: s });
        s = "";
        push({ t: "var", name: this.word() });
      } else s += c;
    }
  }

  /** Expressions; `props`: inside `where`, where a bare name is a property of the item. */
  expr(props: boolean): Expr {
    let a = this.andExpr(props);
    for (;;) {
      this.ws();
      if (this.src.startsWith("||", this.pos)) {
        this.pos += 2;
        a = { t: "op", op: "||", a, b: this.andExpr(props) };
      } else return a;
    }
  }
  andExpr(props: boolean): Expr {
    let a = this.notExpr(props);
    for (;;) {
      this.ws();
      if (this.src.startsWith("&&", this.pos)) {
        this.pos += 2;
        a = { t: "op", op: "&&", a, b: this.notExpr(props) };
      } else return a;
    }
  }
  notExpr(props: boolean): Expr {
    this.ws();
    if (this.peek() === "!" && this.src[this.pos + 1] !== "=") {
      this.next();
      return { t: "not", a: this.notExpr(props) };
    }
    const a = this.concat(props);
    this.ws();
    const op = ["!=", "<=", ">=", "=", "<", ">", "~"].find((o) => this.src.startsWith(o, this.pos));
    if (!op) return a;
    this.pos += op.length;
    return { t: "op", op, a, b: this.concat(props) };
  }
  concat(props: boolean): Expr {
    let a = this.atom(props);
    for (;;) {
      this.ws();
      if (this.peek() === "." && !props) {
        this.next();
        a = { t: "op", op: ".", a, b: this.atom(props) };
      } else return a;
    }
  }

  /** RouterOS checks argument names when it parses, before anything runs. */
  validate(s: Extract<Stmt, { t: "cmd" }>): void {
    const def = MENUS[s.menu];
    const props = Object.keys(def?.props ?? {});
    const named: Record<string, string[]> = {
      import: ["file-name", "verbose"],
      export: ["file"],
      save: ["name", "dont-encrypt"],
      load: ["name", "password"],
      add: [...props, ...(s.menu === "ip firewall filter" ? ["place-before"] : [])],
      set: props,
    };
    const flags: Record<string, string[]> = {
      export: ["terse", "verbose"],
      print: ["terse", "without-paging"],
    };
    const positional = def?.settings ? { get: 1 } : { set: 1, remove: 1, get: 2, "make-static": 1, run: 1 };
    let seen = 0;
    for (const a of s.args) {
      if (a.name !== undefined) {
        if (!(named[s.cmd] ?? []).includes(a.name)) this.failAt(s, "expected end of command");
      } else if (a.value.t === "word" && (flags[s.cmd] ?? []).includes(a.value.w)) continue;
      else if (++seen > ((positional as Record<string, number>)[s.cmd] ?? 0))
        this.failAt(s, "expected end of command");
    }
    if (s.cmd === "add") {
      const missing = (def?.required ?? []).filter((r) => !s.args.some((a) => a.name === r));
      if (missing.length)
        throw new RosError(`missing value(s) of argument(s) ${missing.join(", ")} ${at(s.line, s.col)}`);
    }
  }
  failAt(s: { line: number; col: number }, msg: string): never {
    throw new RosError(`${msg} ${at(s.line, s.col)}`);
  }
}

export function parse(src: string, version: string): Stmt[] {
  return new Parser(src, version).script();
}

// ------------------------------------------------------------------------------------------------
// The router: runs statements against the state
// ------------------------------------------------------------------------------------------------

export class Router {
  out: string[] = [];
  readonly s: RouterState;
  readonly dir: string;
  readonly user: string;
  constructor(s: RouterState, dir: string, user = "admin") {
    this.s = s;
    this.dir = dir;
    this.user = user;
  }

  get files(): string {
    return filesDir(this.dir);
  }

  /** Runs a script as /import or a scheduler would: parse all, then run; errors become text. */
  runScript(src: string): boolean {
    try {
      this.run(parse(src, this.s.version), [new Map()]);
      return true;
    } catch (e) {
      if (!(e instanceof RosError)) throw e;
      this.out.push(e.message);
      return false;
    }
  }

  private canWrite(): boolean {
    const user = this.s.users.find((u) => u.name === this.user);
    const policy = this.s.groups.find((g) => g.name === user?.group)?.policy.split(",") ?? [];
    return policy.includes("write");
  }
  hasFtp(): boolean {
    const user = this.s.users.find((u) => u.name === this.user);
    return (this.s.groups.find((g) => g.name === user?.group)?.policy.split(",") ?? []).includes("ftp");
  }

  run(body: Stmt[], scopes: Map<string, Value>[]): Value {
    let last: Value = null;
    for (const st of body) {
      if (st.t === "block") last = this.run(st.body, [...scopes, new Map()]);
      else if (st.t === "ice") last = this.ice(st, scopes);
      else if (st.t === "cmd") last = this.cmd(st, scopes);
    }
    return last;
  }

  eval(e: Expr, scopes: Map<string, Value>[], item?: Item, menu?: string): Value {
    switch (e.t) {
      case "lit":
        return e.v;
      case "word": {
        if (item && menu) return this.prop(menu, item, e.w);
        const b = toBool(e.w);
        return b === undefined ? e.w : b;
      }
      case "var": {
        for (const sc of [...scopes].reverse()) if (sc.has(e.name)) return sc.get(e.name)!;
        return this.declaredGlobal(scopes, e.name) ? (this.s.globals[e.name] ?? null) : null;
      }
      case "sub":
        return this.run(e.body, [...scopes, new Map()]);
      case "block":
        return null;
      case "not":
        return !toBool(this.eval(e.a, scopes, item, menu));
      case "op": {
        if (e.op === "&&")
          return !!toBool(this.eval(e.a, scopes, item, menu)) && !!toBool(this.eval(e.b, scopes, item, menu));
        if (e.op === "||")
          return !!toBool(this.eval(e.a, scopes, item, menu)) || !!toBool(this.eval(e.b, scopes, item, menu));
        const a = this.eval(e.a, scopes, item, menu);
        // On the right of a comparison in `where`, a bare word is a value, not a property.
        const b = item && e.b.t === "word" ? e.b.w : this.eval(e.b, scopes, item, menu);
        switch (e.op) {
          case "=":
            return eq(a, b);
          case "!=":
            return !eq(a, b);
          case ".":
            return str(a) + str(b);
          case "~":
            return new RegExp(str(b)).test(str(a));
          default: {
            const [x, y] = [Number(a), Number(b)];
            return e.op === "<" ? x < y : e.op === ">" ? x > y : e.op === "<=" ? x <= y : x >= y;
          }
        }
      }
    }
  }

  private declaredGlobal(scopes: Map<string, Value>[], name: string): boolean {
    return scopes.some((sc) => sc.get(`\0global:${name}`) === true);
  }

  private ice(st: Extract<Stmt, { t: "ice" }>, scopes: Map<string, Value>[]): Value {
    const named = (n: string) => st.args.find((a) => a.name === n)?.value;
    const pos = st.args.filter((a) => a.name === undefined).map((a) => a.value);
    const v = (e: Expr | undefined) => (e ? this.eval(e, scopes) : null);
    switch (st.cmd) {
      case "put":
        this.out.push(str(v(pos[0])));
        return null;
      case "error":
        throw new RosError(str(v(pos[0])));
      case "if": {
        const branch = toBool(v(pos[0])) ? named("do") : named("else");
        if (branch?.t === "block") return this.run(branch.body, [...scopes, new Map()]);
        return null;
      }
      case "global": {
        const name = (pos[0] as { w: string }).w;
        scopes[0]!.set(`\0global:${name}`, true);
        if (pos[1]) this.s.globals[name] = v(pos[1]);
        return null;
      }
      case "local":
        scopes.at(-1)!.set((pos[0] as { w: string }).w, v(pos[1]));
        return null;
      case "set": {
        const name = (pos[0] as { w: string }).w;
        const value = v(pos[1]);
        for (const sc of [...scopes].reverse())
          if (sc.has(name)) {
            sc.set(name, value);
            return null;
          }
        if (this.declaredGlobal(scopes, name)) this.s.globals[name] = value;
        return null;
      }
      case "foreach": {
        const name = (pos[0] as { w: string }).w;
        const list = v(named("in"));
        const body = named("do");
        for (const x of Array.isArray(list) ? list : list === null ? [] : [list])
          if (body?.t === "block") this.run(body.body, [...scopes, new Map([[name, x]])]);
        return null;
      }
      case "len": {
        const x = v(pos[0]);
        return Array.isArray(x) ? x.length : x === null ? 0 : str(x).length;
      }
      case "pick": {
        const x = v(pos[0]);
        return Array.isArray(x) ? (x[Number(v(pos[1]))] ?? null) : null;
      }
    }
    return null;
  }

  // --- menus ----------------------------------------------------------------------------------

  items(menu: string): Item[] {
    if (menu === "file") return this.fileItems();
    if (menu === "user")
      return this.s.users.map((u, i) => ({ id: `*U${i}`, dynamic: false, props: { ...u } }));
    if (menu === "user group")
      return this.s.groups.map((g, i) => ({ id: `*G${i}`, dynamic: false, props: { ...g } }));
    if (menu === "interface bridge vlan") return [...this.s.menus[menu]!, ...this.dynamicVlans()];
    return this.s.menus[menu] ?? [];
  }

  private fileItems(): Item[] {
    mkdirSync(this.files, { recursive: true });
    return readdirSync(this.files)
      .sort()
      .map((name) => ({
        id: `*F${name}`,
        dynamic: false,
        props: {
          name,
          type: name.endsWith(".backup") ? "backup" : name.endsWith(".rsc") ? "script" : "file",
          size: statSync(path.join(this.files, name)).size,
        },
      }));
  }

  /** RouterOS lists the PVIDs in use that no static entry covers as dynamic entries. */
  private dynamicVlans(): Item[] {
    const out: Item[] = [];
    for (const br of this.s.menus["interface bridge"]!) {
      const bridge = String(br.props.name);
      const members = [
        { name: bridge, pvid: Number(br.props.pvid) },
        ...this.s.menus["interface bridge port"]!.filter((p) => p.props.bridge === bridge).map((p) => ({
          name: String(p.props.interface),
          pvid: Number(p.props.pvid),
        })),
      ];
      const pvids = [...new Set(members.map((m) => m.pvid))];
      for (const pvid of pvids) {
        const covered = new Set(
          this.s.menus["interface bridge vlan"]!.filter(
            (v) => v.props.bridge === bridge && Number(v.props["vlan-ids"]) === pvid,
          ).flatMap((v) => [...String(v.props.tagged).split(","), ...String(v.props.untagged).split(",")]),
        );
        const untagged = members.filter((m) => m.pvid === pvid && !covered.has(m.name)).map((m) => m.name);
        if (untagged.length)
          out.push({
            id: `*D${bridge}.${pvid}`,
            dynamic: true,
            props: { bridge, "vlan-ids": pvid, tagged: "", untagged: untagged.join(",") },
          });
      }
    }
    return out;
  }

  /** The one bridge whose ports the switch chip offloads: the first with hw=yes ports. */
  offloadedBridge(): string | undefined {
    const port = this.s.menus["interface bridge port"]!.find((p) => p.props.hw === true);
    return port ? String(port.props.bridge) : undefined;
  }

  prop(menu: string, item: Item, name: string): Value {
    if (name === "dynamic") return item.dynamic;
    if (name === ".id") return item.id;
    if (menu === "interface bridge port" && name === "hw-offload")
      return item.props.hw === true && item.props.bridge === this.offloadedBridge();
    return item.props[name] ?? null;
  }

  private ids(menu: string, e: Expr | undefined, scopes: Map<string, Value>[]): Item[] {
    if (!e) return [];
    const v = this.eval(e, scopes);
    const wanted = (Array.isArray(v) ? v : [v]).map(str);
    const items = this.items(menu);
    if (!wanted.length && e.t !== "sub") throw new RosError("no such item");
    return wanted.map((w) => {
      const found = items.find(
        (i) => i.id === w || i.props.name === w || (menu === "file" && i.props.name === w),
      );
      if (!found) throw new RosError("no such item");
      return found;
    });
  }

  private normalize(menu: string, name: string, v: Value): Scalar {
    const kind = MENUS[menu]!.props[name]!;
    const s = str(v);
    if (kind === "bool") {
      const b = toBool(v);
      if (b === undefined) throw new RosError(`input does not match any value of ${name}`);
      return b;
    }
    if (kind === "num") {
      if (
        !/^\d+$/.test(s) ||
        (name.startsWith("vlan-id") && (Number(s) < 1 || Number(s) > 4094)) ||
        (name === "pvid" && (Number(s) < 1 || Number(s) > 4094))
      )
        throw new RosError(`invalid value for argument ${name}`);
      return Number(s);
    }
    if (kind === "iface" || kind === "bridge") {
      const bridges = this.s.menus["interface bridge"]!.map((b) => String(b.props.name));
      const all =
        kind === "bridge"
          ? bridges
          : [...ETHERNET, ...bridges, ...this.s.menus["interface vlan"]!.map((b) => String(b.props.name))];
      if (!all.includes(s)) throw new RosError(`input does not match any value of ${name}`);
      return s;
    }
    if (typeof kind === "object" && !kind.oneOf.includes(s))
      throw new RosError(`input does not match any value of ${name}`);
    return s;
  }

  private mutate(): void {
    if (!this.canWrite()) throw new RosError("not enough permissions (9)");
  }

  private setVlanFiltering(item: Item, on: boolean): void {
    if (item.props["vlan-filtering"] !== on && item.props.name === this.offloadedBridge())
      this.s.chipResets++;
  }

  private cmd(st: Extract<Stmt, { t: "cmd" }>, scopes: Map<string, Value>[]): Value {
    const named = (n: string) => {
      const a = st.args.find((x) => x.name === n);
      return a ? this.eval(a.value, scopes) : undefined;
    };
    const positional = st.args
      .filter((a) => a.name === undefined && a.value.t !== "word")
      .map((a) => a.value);
    const flag = (f: string) =>
      st.args.some((a) => a.name === undefined && a.value.t === "word" && a.value.w === f);
    const menu = st.menu;
    const def = MENUS[menu];
    const match = (i: Item) => !st.where || !!toBool(this.eval(st.where, scopes, i, menu));
    switch (st.cmd) {
      case "import":
        return this.import(str(named("file-name") ?? null), toBool(named("verbose") ?? false) === true);
      case "find":
        return this.items(menu)
          .filter(match)
          .map((i) => i.id);
      case "print":
        for (const i of this.items(menu).filter(match))
          this.out.push(
            `${i.id} ${i.dynamic ? "D " : ""}${Object.entries(i.props)
              .map(([k, v]) => `${k}=${str(v)}`)
              .join(" ")}`,
          );
        if (def?.settings) {
          const p =
            menu === "system resource"
              ? { version: this.s.version, "board-name": "CRS326-24G-2S+" }
              : this.s.settings[menu]!;
          for (const [k, v] of Object.entries(p)) this.out.push(`${k}: ${str(v)}`);
        }
        return null;
      case "get": {
        if (def?.settings) {
          const name = (st.args[0]!.value as { w: string }).w;
          if (menu === "system resource") return name === "version" ? this.s.version : "CRS326-24G-2S+";
          return this.s.settings[menu]![name] ?? null;
        }
        const [item] = this.ids(menu, st.args[0]!.value, scopes);
        if (!item) throw new RosError("no such item");
        const p = st.args[1]!.value;
        return this.prop(menu, item!, p.t === "word" ? p.w : str(this.eval(p, scopes)));
      }
      case "export": {
        const lines = this.export(menu, flag("terse"), flag("verbose"), match);
        const file = named("file");
        if (file !== undefined)
          writeFileSync(path.join(this.files, `${str(file)}.rsc`), `${lines.join("\n")}\n`);
        else this.out.push(...lines);
        return null;
      }
      case "add": {
        this.mutate();
        const props: Props = { ...(def!.defaults ?? {}) };
        for (const a of st.args)
          if (a.name && a.name !== "place-before")
            props[a.name] = this.normalize(menu, a.name, this.eval(a.value, scopes));
        const list = this.s.menus[menu]!;
        if ("name" in def!.props && list.some((i) => i.props.name === props.name))
          throw new RosError(
            menu.startsWith("interface")
              ? "failure: already have interface with such name"
              : "failure: already have such entry",
          );
        if (menu === "interface bridge port" && list.some((i) => i.props.interface === props.interface))
          throw new RosError("failure: device already added as bridge port");
        if (
          menu === "ip dhcp-server lease" &&
          list.some((i) => i.props["mac-address"] === props["mac-address"] && i.props.server === props.server)
        )
          throw new RosError("failure: already have static lease with this MAC address");
        const item: Item = { id: `*${(this.s.nextId++).toString(16).toUpperCase()}`, dynamic: false, props };
        const before = named("place-before");
        const index = before === undefined ? -1 : list.findIndex((i) => i.id === str(before));
        if (before !== undefined && index < 0) throw new RosError("no such item");
        if (index < 0) list.push(item);
        else list.splice(index, 0, item);
        return item.id;
      }
      case "set": {
        this.mutate();
        if (def!.settings) {
          for (const a of st.args)
            if (a.name)
              this.s.settings[menu]![a.name] = this.normalize(menu, a.name, this.eval(a.value, scopes));
          return null;
        }
        for (const item of this.ids(menu, positional[0], scopes)) {
          if (item.dynamic) throw new RosError("failure: can not change dynamic entry");
          for (const a of st.args) {
            if (!a.name) continue;
            const value = this.normalize(menu, a.name, this.eval(a.value, scopes));
            if (menu === "interface bridge" && a.name === "vlan-filtering")
              this.setVlanFiltering(item, value === true);
            item.props[a.name] = value;
          }
        }
        return null;
      }
      case "remove": {
        this.mutate();
        const items = st.where ? this.items(menu).filter(match) : this.ids(menu, positional[0], scopes);
        for (const item of items) {
          if (menu === "file") {
            rmSync(path.join(this.files, String(item.props.name)));
            continue;
          }
          if (item.dynamic && menu === "interface bridge vlan")
            throw new RosError("failure: can not remove dynamic entry");
          const list = this.s.menus[menu]!;
          if (
            menu === "interface bridge" &&
            this.s.menus["interface bridge port"]!.some((p) => p.props.bridge === item.props.name)
          )
            throw new RosError("failure: bridge has ports");
          list.splice(list.indexOf(item), 1);
        }
        return null;
      }
      case "make-static": {
        this.mutate();
        for (const item of this.ids(menu, positional[0], scopes)) item.dynamic = false;
        return null;
      }
      case "run": {
        for (const item of this.ids(menu, positional[0], scopes))
          this.run(parse(str(item.props.source ?? ""), this.s.version), [new Map()]);
        return null;
      }
      case "save": {
        this.mutate();
        const name = str(named("name") ?? "backup");
        writeFileSync(path.join(this.files, `${name}.backup`), JSON.stringify(configOf(this.s)));
        this.out.push("Configuration backup saved");
        return null;
      }
      case "load": {
        this.mutate();
        const file = path.join(this.files, str(named("name") ?? null));
        if (!existsSync(file)) throw new RosError("failure: no such file");
        const saved = JSON.parse(readFileSync(file, "utf8")) as Config;
        const wasFiltering = new Map(
          this.s.menus["interface bridge"]!.map((b) => [b.props.name, b.props["vlan-filtering"]]),
        );
        this.s.menus = saved.menus;
        this.s.settings = saved.settings;
        for (const b of this.s.menus["interface bridge"]!)
          if (
            wasFiltering.get(b.props.name) !== b.props["vlan-filtering"] &&
            b.props.name === this.offloadedBridge()
          )
            this.s.chipResets++;
        // The restore reboots the switch: global variables are gone.
        this.s.globals = {};
        this.s.reboots++;
        return null;
      }
    }
    return null;
  }

  /** Terse: one line per object; otherwise the menu on its own line. Verbose: defaults too. */
  private export(menu: string, terse: boolean, verbose: boolean, match: (i: Item) => boolean): string[] {
    const menus = menu === "" ? [...CONFIG_MENUS, "ip dns"] : [menu];
    const lines: string[] = [];
    const quote = (v: string) =>
      /^[A-Za-z0-9.:,/_-]+$/.test(v) ? v : `"${v.replace(/[\\"$?]/g, (c) => `\\${c}`)}"`;
    const fmt = (p: Props) =>
      Object.entries(p)
        .map(([k, v]) => `${k}=${typeof v === "boolean" ? (v ? "yes" : "no") : quote(String(v))}`)
        .join(" ");
    const emit = (m: string, cmd: string) => lines.push(...(terse ? [`/${m} ${cmd}`] : [`/${m}`, cmd]));
    for (const m of menus) {
      const def = MENUS[m]!;
      if (def.settings) {
        const p = Object.fromEntries(
          Object.entries(this.s.settings[m]!).filter(([k, v]) => verbose || def.defaults?.[k] !== v),
        );
        if (Object.keys(p).length) emit(m, `set ${fmt(p)}`);
        continue;
      }
      for (const i of this.items(m).filter((x) => !x.dynamic && match(x))) emit(m, `add ${fmt(i.props)}`);
    }
    return lines;
  }

  private import(file: string, verbose: boolean): null {
    const p = path.join(this.files, file);
    if (!file || !existsSync(p)) throw new RosError("failure: no such file");
    const src = readFileSync(p, "utf8");
    if (!verbose) {
      const inner = new Router(this.s, this.dir, this.user);
      const ok = inner.runScript(src);
      this.out.push(...inner.out);
      if (ok) this.out.push("Script file loaded and executed successfully");
      return null;
    }
    // verbose: every line is read and run on its own, and the import goes on after an error.
    src.split("\n").forEach((line, i) => {
      if (!line.trim()) return;
      this.out.push(line);
      const inner = new Router(this.s, this.dir, this.user);
      if (!inner.runScript(line)) inner.out[inner.out.length - 1] = `${inner.out.at(-1)} (line ${i + 1})`;
      this.out.push(...inner.out);
    });
    return null;
  }
}

// ------------------------------------------------------------------------------------------------
// Test hooks and the SSH entry point
// ------------------------------------------------------------------------------------------------

/** Runs a scheduler entry's on-event, as RouterOS does when its interval comes round. */
export function fireScheduler(dir: string, name: string): string[] {
  const s = loadState(dir);
  const entry = s.menus["system scheduler"]!.find((e) => e.props.name === name);
  if (!entry) throw new Error(`no scheduler entry ${name}`);
  const r = new Router(s, dir, s.users[0]!.name);
  r.runScript(String(entry.props["on-event"]));
  saveState(dir, s);
  return r.out;
}

/** One exec request: one line. */
function main(dir: string): void {
  const s = loadState(dir);
  const r = new Router(s, dir, process.env.USER ?? "admin");
  // "it is not possible to send multiline commands via SSH": only the first line is read.
  r.runScript((process.env.SSH_ORIGINAL_COMMAND ?? "").split("\n")[0]!);
  saveState(dir, s);
  if (r.out.length) process.stdout.write(`${r.out.join("\r\n")}\r\n`);
}

// The gate (SFTP_GATE) runs this program with FAKE_ROUTEROS_STATE set; tests import it.
if (process.env.FAKE_ROUTEROS_STATE) main(process.env.FAKE_ROUTEROS_STATE);
