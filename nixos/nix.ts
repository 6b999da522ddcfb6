/**
 * Plain values → Nix expression text. Strings are always Nix strings (an absolute path stays a
 * string: a path literal would be copied into the world-readable store), attribute names are quoted
 * when they are not plain identifiers, and null is refused so a missing value is never silently
 * written as `null`. `nixExpr` marks text to be emitted as-is (e.g. `pkgs.sqlite`), `nixCall` a
 * function application (e.g. `lib.mkForce false`).
 */

export class NixExpr {
  constructor(readonly text: string) {}
}

/** Raw Nix text, written as-is. Only for fixed expressions the program itself chooses. */
export function nixExpr(text: string): NixExpr {
  return new NixExpr(text);
}

/** A function application such as `lib.mkForce false`; arguments are rendered like any value. */
export class NixCall {
  constructor(
    readonly fn: string,
    readonly args: NixValue[],
  ) {}
}

/** `lib.mkIf cond value` and the like. Only for functions the program itself chooses. */
export function nixCall(fn: string, ...args: NixValue[]): NixCall {
  return new NixCall(fn, args);
}

export type NixValue =
  string | number | boolean | NixExpr | NixCall | NixValue[] | { [key: string]: NixValue | undefined };

const KEYWORDS = new Set(["if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"]);

export function nixAttrName(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_'-]*$/.test(name) && !KEYWORDS.has(name) ? name : nixString(name);
}

/** A double-quoted Nix string: `"`, `\` and `${` escaped, control characters as escapes. */
export function nixString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === "\\") out += "\\\\";
    else if (ch === '"') out += '\\"';
    else if (ch === "$" && s[i + 1] === "{") out += "\\$";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else out += ch;
  }
  return `${out}"`;
}

/**
 * An indented string ('' … '') for readable multi-line text such as scripts, or undefined when the
 * text cannot round-trip that way (Nix strips common leading spaces; tabs and CR do not count).
 */
function nixIndentedString(s: string, indent: string): string | undefined {
  if (!s.includes("\n") || /[\r\t]/.test(s)) return undefined;
  const lines = s.split("\n");
  const trailingNewline = lines[lines.length - 1] === "";
  if (trailingNewline) lines.pop();
  // Nix drops the common indentation of non-empty lines: one must start at column 0.
  if (!lines.some((l) => l.length > 0 && !l.startsWith(" "))) return undefined;
  if (lines[0]!.trim() === "") return undefined;
  const escaped = lines.map((l) =>
    l === "" ? "" : indent + l.replace(/''/g, "'''").replace(/\$\{/g, "''${"),
  );
  return `''\n${escaped.join("\n")}${trailingNewline ? `\n${indent.slice(2)}''` : "''"}`;
}

export function toNix(value: NixValue | undefined | null, indent = ""): string {
  if (value === null || value === undefined) {
    throw new Error("null/undefined has no place in the generated Nix (a missing value?)");
  }
  if (value instanceof NixExpr) return value.text;
  if (value instanceof NixCall)
    return [
      value.fn,
      ...value.args.map((a) => (a instanceof NixCall ? `(${toNix(a, indent)})` : toNix(a, indent))),
    ].join(" ");
  if (typeof value === "string") return nixIndentedString(value, `${indent}  `) ?? nixString(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value))
      throw new Error(`${value} is not an integer; the generated Nix holds integers only`);
    return value < 0 ? `(${value})` : String(value);
  }
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return "[ ]";
    const item = (v: NixValue) => (v instanceof NixCall ? `(${toNix(v, inner)})` : toNix(v, inner));
    return `[\n${value.map((v) => `${inner}${item(v)}`).join("\n")}\n${indent}]`;
  }
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return "{ }";
  return `{\n${entries.map(([k, v]) => `${inner}${nixAttrName(k)} = ${toNix(v, inner)};`).join("\n")}\n${indent}}`;
}
