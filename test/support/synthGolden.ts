/**
 * The comparison behind test/synthGolden.test.ts: a synth's output (resources.json, outputs.json,
 * files/) against the golden capture, as texts a person can read when they differ.
 *
 * A synth is split into texts: every file; every resource's entry of resources.json (one per URN:
 * the order resources register in depends on how the program runs, not on what it registers), with
 * each multi-line string input (a script) as a text of its own; outputs.json. Where a text holds a
 * generated script or module (the driver holds the deploy script, quoted, run as root), that
 * embedding is shown as a token, ⟪as-root, quoted: scripts/deploy.sh⟫: each file is compared once,
 * on its own, and a text that embeds it is compared around it.
 *
 * Reviewed changes (a file of hunks, see parseChanges) turn the golden into what the synth is
 * expected to write today; anything else that differs is reported with its text and first line.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import type { SynthResource, SynthResult } from "../../ci/commands/synth/harness";
import { asRoot } from "../../components/nixosHost/scripts";
import { shellQuote } from "../../components/text";

export type Tree = Map<string, string>;

const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

/** Relative path → text, as `npm run synth` writes them (ci/commands/synth/cli.ts). */
export function writtenTree(r: SynthResult, resources = r.resources): Tree {
  const out: Tree = new Map([
    ["resources.json", json(resources)],
    ["outputs.json", json(r.outputs)],
  ]);
  for (const [rel, content] of Object.entries(r.files)) out.set(`files/${rel}`, content);
  return out;
}

export function readTree(dir: string): Tree {
  const out: Tree = new Map();
  for (const rel of readdirSync(dir, { recursive: true }) as string[]) {
    const file = path.join(dir, rel);
    if (statSync(file).isFile()) out.set(rel.split(path.sep).join("/"), readFileSync(file, "utf8"));
  }
  return out;
}

/**
 * Goldens captured before the rollback script was a file of its own hold it only inside deploy.sh,
 * as the quoted argument of `printf '%s' … | sed`: taken out here, it compares as that file.
 */
export function withRollbackFiles(golden: Tree): Tree {
  const out = new Map(golden);
  for (const [rel, text] of golden) {
    const rollback = rel.replace(/deploy\.sh$/, "rollback.sh");
    if (!rel.endsWith("/scripts/deploy.sh") || golden.has(rollback)) continue;
    const found = /\nprintf '%s' ('#!\/bin\/sh\n(?:[^']|'\\'')*') \| sed -e "s\|@PREVIOUS@\|/.exec(text);
    if (!found) throw new Error(`${rel}: no rollback script in it`);
    const rollbackText = found[1]!.slice(1, -1).replaceAll("'\\''", "'");
    if (shellQuote(rollbackText) !== found[1])
      throw new Error(`${rel}: the rollback script is not one quoted word`);
    out.set(rollback, rollbackText);
  }
  return out;
}

/** A file's name in tokens: its path below files/<site>/ (the same for every stack). */
const tokenName = (rel: string): string => rel.split("/").slice(2).join("/");

/** The texts of one synth (see the header), embedded scripts and modules shown as tokens. */
export function texts(tree: Tree): Tree {
  const out: Tree = new Map();
  for (const [rel, text] of tree) {
    if (rel === "resources.json") {
      for (const r of JSON.parse(text) as SynthResource[]) {
        const strings: Array<[string, string]> = [];
        const entry = splitStrings(r, r.name, strings);
        out.set(`resources.json ${r.urn}`, json(entry));
        for (const [where, s] of strings) out.set(`resources.json ${r.urn} ${where}`, s);
      }
    } else out.set(rel, text);
  }
  const embedded = [...tree]
    .filter(([rel]) => rel.startsWith("files/") && /\.(sh|nix)$/.test(rel))
    .sort(([, a], [, b]) => b.length - a.length);
  for (const [name, text] of out) {
    let t = text;
    for (const [rel, inner] of embedded) {
      if (rel === name) continue;
      const n = tokenName(rel);
      t = t
        .replaceAll(shellQuote(asRoot(inner)), `⟪as-root, quoted: ${n}⟫`)
        .replaceAll(asRoot(inner), `⟪as-root: ${n}⟫`)
        .replaceAll(shellQuote(inner), `⟪quoted: ${n}⟫`)
        .replaceAll(inner, `⟪${n}⟫`);
    }
    out.set(name, t);
  }
  return out;
}

/** A resource entry with every multi-line string replaced by a reference to its own text. */
function splitStrings(value: unknown, where: string, strings: Array<[string, string]>): unknown {
  if (typeof value === "string" && value.includes("\n")) {
    strings.push([where, value]);
    return `⟪text: ${where}⟫`;
  }
  if (Array.isArray(value)) return value.map((v, i) => splitStrings(v, `${where}[${i}]`, strings));
  if (value !== null && typeof value === "object")
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, splitStrings(v, `${where}.${k}`, strings)]),
    );
  return value;
}

/** The first line where two texts differ, for a message a person can act on. */
export function firstDifference(expected: string, actual: string): string {
  const a = expected.split("\n");
  const b = actual.split("\n");
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      const show = (l: string | undefined) => (l === undefined ? "(no such line)" : JSON.stringify(l));
      return `line ${i + 1}:\n    golden: ${show(a[i])}\n    synth:  ${show(b[i])}`;
    }
  }
  return "the same lines, different bytes";
}

/** Every difference between two sets of texts, one paragraph each. */
export function differences(golden: Tree, fresh: Tree): string[] {
  const problems: string[] = [];
  for (const name of golden.keys()) if (!fresh.has(name)) problems.push(`${name}: in the golden only`);
  for (const [name, text] of fresh) {
    const before = golden.get(name);
    if (before === undefined) problems.push(`${name}: in the synth only`);
    else if (before !== text) problems.push(`${name} ${firstDifference(before, text)}`);
  }
  return problems;
}

/**
 * A reviewed change: wherever `before` (whole lines) occurs in a golden text, the synth writes
 * `after` instead. `text` changes replace a string anywhere (a deploy id a changed module changes).
 */
export interface Change {
  why: string;
  kind: "lines" | "text";
  /** The texts it applies to (each must contain it); unset: wherever it matches. */
  in?: string[];
  before: string[];
  after: string[];
}

/**
 * The reviewed-changes file: hunks as in a unified diff, without line numbers. A hunk starts with
 * `@@ [<text>, …] <why>` (the texts it applies to, each of which must contain it, e.g.
 * files/office/scripts/deploy.sh), or `@@ text: <why>` for a string replaced wherever it occurs
 * (a deploy id); its lines start with " " (in both), "-"
 * (golden only) or "+" (synth only); an empty line in a script is a lone " ", "-" or "+". Empty
 * lines and lines starting with "#" are comments.
 */
export function parseChanges(text: string): Change[] {
  const changes: Change[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("@@ ")) {
      const head = line.slice(3);
      const scoped = /^\[([^\]]+)\] (.+)$/.exec(head);
      if (head.startsWith("text: "))
        changes.push({ why: head.slice(6), kind: "text", before: [], after: [] });
      else if (scoped)
        changes.push({
          why: scoped[2]!,
          kind: "lines",
          in: scoped[1]!.split(",").map((t) => t.trim()),
          before: [],
          after: [],
        });
      else
        throw new Error(
          `reviewed changes: ${JSON.stringify(line)} names no texts ([…]) and is no text: change`,
        );
      continue;
    }
    if (line === "" || line.startsWith("#")) continue;
    const current = changes[changes.length - 1];
    if (!current) throw new Error(`reviewed changes: ${JSON.stringify(line)} is outside a hunk`);
    const mark = line[0];
    const rest = line.slice(1);
    if (mark === " " || mark === "-") current.before.push(rest);
    if (mark === " " || mark === "+") current.after.push(rest);
    if (mark !== " " && mark !== "-" && mark !== "+")
      throw new Error(
        `reviewed changes, "${current.why}": ${JSON.stringify(line)} starts with none of " -+"`,
      );
  }
  return changes;
}

/** Replaces every run of lines equal to `before` in `text` by `after`; how many it replaced. */
function replaceLines(text: string, before: string[], after: string[]): [string, number] {
  const lines = text.split("\n");
  const out: string[] = [];
  let count = 0;
  for (let i = 0; i < lines.length;) {
    if (before.length > 0 && before.every((l, k) => lines[i + k] === l)) {
      out.push(...after);
      i += before.length;
      count++;
    } else out.push(lines[i++]!);
  }
  return [out.join("\n"), count];
}

/** The golden texts with the reviewed changes applied, and the changes that did not apply. */
export function applyChanges(golden: Tree[], changes: Change[]): { trees: Tree[]; unused: Change[] } {
  const trees = golden.map((t) => new Map(t));
  const unused = new Set<Change>();
  const ordered = [...changes.filter((c) => c.kind === "lines"), ...changes.filter((c) => c.kind === "text")];
  for (const change of ordered) {
    const hit = new Set<string>();
    for (const tree of trees) {
      for (const [name, text] of tree) {
        if (change.in && !change.in.includes(name)) continue;
        let next: string;
        let count: number;
        if (change.kind === "lines") [next, count] = replaceLines(text, change.before, change.after);
        else {
          const [from, to] = [change.before.join("\n"), change.after.join("\n")];
          count = text.split(from).length - 1;
          next = text.replaceAll(from, to);
        }
        if (count > 0) {
          hit.add(name);
          tree.set(name, next);
        }
      }
    }
    if (change.in ? change.in.some((name) => !hit.has(name)) : hit.size === 0) unused.add(change);
  }
  return { trees, unused: changes.filter((c) => unused.has(c)) };
}
