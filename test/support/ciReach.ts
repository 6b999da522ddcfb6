/**
 * Which jobs and steps of a CI file run for a given event: GitHub Actions `on:` plus job and step
 * `if:` expressions, GitLab `rules:` with `extends:`. Enough of each language to decide reachability
 * of the templates' steps; anything it does not know throws (a test then fails loudly instead of
 * passing by accident).
 *
 * GitHub expressions (docs "Evaluate expressions in workflows and actions"): literals (strings in
 * single quotes, numbers, true, false, null), context paths, `!`, `==`, `!=`, `&&`, `||`,
 * parentheses, and the functions format, startsWith, endsWith, contains and the status checks
 * (success, always, failure, cancelled), which count as true: a step they guard can run. String
 * comparison ignores case, and values of different types compare as numbers (null and '' are 0),
 * as GitHub's do. A job or step `if:` without `${{ }}` is an expression.
 *
 * GitLab rules (docs "Specify when jobs run with rules"): `$VAR` (unset: null), "…" or '…' strings,
 * `==`, `!=`, `=~`/`!~` with /regex/, `&&`, `||`, parentheses, `null`. The first rule whose `if`
 * holds decides (`when: never` excludes); no rule holding excludes the job; a job without rules runs.
 */

type Value = string | number | boolean | null | Record<string, unknown> | unknown[];

// ---------------------------------------------------------------- GitHub
type Token = { kind: "str" | "num" | "id" | "op" | "punct"; text: string };

function tokenize(src: string, ops: string[]): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "'") {
      let j = i + 1;
      let text = "";
      for (;;) {
        if (j >= src.length) throw new Error(`unterminated string in ${src}`);
        if (src[j] === "'" && src[j + 1] === "'") {
          text += "'";
          j += 2;
        } else if (src[j] === "'") break;
        else text += src[j++];
      }
      out.push({ kind: "str", text });
      i = j + 1;
      continue;
    }
    const op = ops.find((o) => src.startsWith(o, i));
    if (op) {
      out.push({ kind: "op", text: op });
      i += op.length;
      continue;
    }
    if ("(),".includes(c)) {
      out.push({ kind: "punct", text: c });
      i++;
      continue;
    }
    const num = /^-?\d+(\.\d+)?/.exec(src.slice(i));
    if (num) {
      out.push({ kind: "num", text: num[0] });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][\w.-]*(\.\*)?/.exec(src.slice(i));
    if (id) {
      out.push({ kind: "id", text: id[0] });
      i += id[0].length;
      continue;
    }
    throw new Error(`cannot read ${JSON.stringify(src.slice(i))} in ${src}`);
  }
  return out;
}

const truthy = (v: Value) => v !== null && v !== false && v !== 0 && v !== "" && v !== undefined;
const lower = (v: Value) => (typeof v === "string" ? v.toLowerCase() : v);
/** GitHub's coercion when the two sides of == differ in type: both to numbers (null 0, '' 0). */
const toNumber = (v: Value): number =>
  v === null
    ? 0
    : typeof v === "boolean"
      ? Number(v)
      : typeof v === "number"
        ? v
        : typeof v === "string"
          ? v.trim() === ""
            ? 0
            : Number(v)
          : NaN;
function looseEqual(a: Value, b: Value): boolean {
  if (typeof a === "string" && typeof b === "string") return a.toLowerCase() === b.toLowerCase();
  if (typeof a === typeof b && (a === null) === (b === null)) return a === b;
  return toNumber(a) === toNumber(b);
}

export type GithubContext = Record<string, Value>;

/** Evaluates a GitHub Actions expression (with or without `${{ }}`) in `context`. */
export function githubExpression(expr: string, context: GithubContext): Value {
  const src = expr.trim().replace(/^\$\{\{([\s\S]*)\}\}$/, "$1");
  const tokens = tokenize(src, ["==", "!=", "&&", "||", "!"]);
  let pos = 0;
  const peek = () => tokens[pos];
  const take = (text?: string) => {
    const t = tokens[pos++];
    if (!t || (text !== undefined && t.text !== text))
      throw new Error(`expected ${text ?? "more"} in ${src}`);
    return t;
  };
  const path = (name: string): Value => {
    const [root, ...rest] = name.split(".");
    if (!(root! in context)) throw new Error(`unknown context ${root} in ${src}`);
    let v: Value = context[root!]!;
    for (const k of rest)
      v = v && typeof v === "object" && !Array.isArray(v) ? ((v as Record<string, Value>)[k] ?? null) : null;
    return v;
  };
  const call = (name: string, args: Value[]): Value => {
    switch (name) {
      case "format":
        return String(args[0]).replace(/\{(\d+)\}/g, (_, n: string) => String(args[Number(n) + 1] ?? ""));
      case "startsWith":
        return String(lower(args[0]!)).startsWith(String(lower(args[1]!)));
      case "endsWith":
        return String(lower(args[0]!)).endsWith(String(lower(args[1]!)));
      case "contains":
        return Array.isArray(args[0])
          ? args[0].some((x) => lower(x as Value) === lower(args[1]!))
          : String(lower(args[0]!)).includes(String(lower(args[1]!)));
      case "success":
      case "always":
      case "failure":
      case "cancelled":
        return true;
      default:
        throw new Error(`unknown function ${name} in ${src}`);
    }
  };
  const primary = (): Value => {
    const t = take();
    if (t.kind === "str") return t.text;
    if (t.kind === "num") return Number(t.text);
    if (t.text === "(") {
      const v = or();
      take(")");
      return v;
    }
    if (t.text === "!") return !truthy(primary());
    if (t.kind === "id") {
      if (t.text === "true") return true;
      if (t.text === "false") return false;
      if (t.text === "null") return null;
      if (peek()?.text === "(") {
        take("(");
        const args: Value[] = [];
        while (peek()?.text !== ")") {
          args.push(or());
          if (peek()?.text === ",") take(",");
        }
        take(")");
        return call(t.text, args);
      }
      return path(t.text);
    }
    throw new Error(`unexpected ${t.text} in ${src}`);
  };
  const equality = (): Value => {
    let v = primary();
    while (peek()?.text === "==" || peek()?.text === "!=") {
      const op = take().text;
      const r = primary();
      const same = looseEqual(v, r);
      v = op === "==" ? same : !same;
    }
    return v;
  };
  const and = (): Value => {
    let v = equality();
    while (peek()?.text === "&&") {
      take();
      const r = equality();
      v = truthy(v) ? r : v;
    }
    return v;
  };
  const or = (): Value => {
    let v = and();
    while (peek()?.text === "||") {
      take();
      const r = and();
      v = truthy(v) ? v : r;
    }
    return v;
  };
  const v = or();
  if (pos !== tokens.length) throw new Error(`trailing ${tokens[pos]!.text} in ${src}`);
  return v;
}

export interface GithubEvent {
  name: string;
  /** The branch a push went to, or a pull request's base branch. */
  branch: string;
  context: GithubContext;
}

/** Whether the workflow's `on:` starts a run for this event (branch filters included). */
export function githubTriggers(on: unknown, event: GithubEvent): boolean {
  if (typeof on === "string") return on === event.name;
  if (Array.isArray(on)) return on.includes(event.name);
  if (!on || typeof on !== "object" || !(event.name in on)) return false;
  const filter = (on as Record<string, { branches?: string[]; "branches-ignore"?: string[] } | null>)[
    event.name
  ];
  if (!filter) return true;
  if (filter["branches-ignore"]) throw new Error("branches-ignore is not modelled");
  if (!filter.branches) return true;
  return filter.branches.some((b) =>
    new RegExp(`^${b.replace(/\*\*/g, ".*").replace(/(?<!\.)\*/g, "[^/]*")}$`).test(event.branch),
  );
}

export interface GithubStep {
  name?: string;
  run?: string;
  uses?: string;
  if?: string;
  env?: Record<string, string>;
}
export interface GithubJob {
  if?: string;
  environment?: string | { name: string };
  env?: Record<string, string>;
  steps?: GithubStep[];
}

/** The steps of `workflow` that run for `event`, with their jobs. */
export function githubReachableSteps(
  workflow: { on: unknown; jobs: Record<string, GithubJob> },
  event: GithubEvent,
): Array<{ job: string; step: GithubStep }> {
  if (!githubTriggers(workflow.on, event)) return [];
  return Object.entries(workflow.jobs).flatMap(([name, job]) => {
    if (job.if !== undefined && !truthy(githubExpression(job.if, event.context))) return [];
    return (job.steps ?? [])
      .filter((step) => step.if === undefined || truthy(githubExpression(step.if, event.context)))
      .map((step) => ({ job: name, step }));
  });
}

// ---------------------------------------------------------------- GitLab
export type GitlabVariables = Record<string, string | undefined>;

/** Evaluates a GitLab `rules:if` expression with these CI/CD variables. */
export function gitlabExpression(expr: string, vars: GitlabVariables): boolean {
  const tokens: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const rest = expr.slice(i);
    const m =
      /^\s+/.exec(rest) ??
      /^\$[A-Za-z_]\w*/.exec(rest) ??
      /^"(?:[^"\\]|\\.)*"/.exec(rest) ??
      /^'[^']*'/.exec(rest) ??
      /^\/(?:[^/\\]|\\.)*\/[a-z]*/.exec(rest) ??
      /^(==|!=|=~|!~|&&|\|\||\(|\))/.exec(rest) ??
      /^null\b/.exec(rest);
    if (!m) throw new Error(`cannot read ${JSON.stringify(rest)} in ${expr}`);
    if (!/^\s+$/.test(m[0])) tokens.push({ kind: "op", text: m[0] });
    i += m[0].length;
  }
  let pos = 0;
  const take = () => {
    const t = tokens[pos++];
    if (!t) throw new Error(`unexpected end of ${expr}`);
    return t.text;
  };
  const operand = (): string | null | RegExp => {
    const t = take();
    if (t.startsWith("$")) return vars[t.slice(1)] ?? null;
    if (t.startsWith('"')) return JSON.parse(t) as string;
    if (t.startsWith("'")) return t.slice(1, -1);
    if (t.startsWith("/")) {
      const end = t.lastIndexOf("/");
      return new RegExp(t.slice(1, end), t.slice(end + 1));
    }
    if (t === "null") return null;
    throw new Error(`unexpected ${t} in ${expr}`);
  };
  const comparison = (): boolean => {
    if (tokens[pos]?.text === "(") {
      take();
      const v = or();
      if (take() !== ")") throw new Error(`expected ) in ${expr}`);
      return v;
    }
    const left = operand();
    const op = tokens[pos]?.text;
    if (op === "==" || op === "!=" || op === "=~" || op === "!~") {
      take();
      const right = operand();
      if (op === "==") return left === right;
      if (op === "!=") return left !== right;
      if (!(right instanceof RegExp)) throw new Error(`${op} needs a /regex/ in ${expr}`);
      const hit = typeof left === "string" && right.test(left);
      return op === "=~" ? hit : !hit;
    }
    return left !== null && left !== "";
  };
  const and = (): boolean => {
    let v = comparison();
    while (tokens[pos]?.text === "&&") {
      take();
      v = comparison() && v;
    }
    return v;
  };
  const or = (): boolean => {
    let v = and();
    while (tokens[pos]?.text === "||") {
      take();
      v = and() || v;
    }
    return v;
  };
  const v = or();
  if (pos !== tokens.length) throw new Error(`trailing ${tokens[pos]!.text} in ${expr}`);
  return v;
}

export type GitlabJob = Record<string, unknown> & {
  extends?: string | string[];
  rules?: Array<{ if?: string; when?: string; changes?: unknown; exists?: unknown }>;
};

const GITLAB_KEYWORDS = new Set([
  "variables",
  "default",
  "stages",
  "include",
  "workflow",
  "image",
  "services",
  "cache",
  "before_script",
  "after_script",
]);

/** The file's jobs (hidden `.templates` and keywords excluded), each with its `extends:` merged in. */
export function gitlabJobs(file: Record<string, unknown>): Record<string, GitlabJob> {
  const resolve = (name: string, seen: string[] = []): GitlabJob => {
    if (seen.includes(name)) throw new Error(`extends cycle at ${name}`);
    const job = file[name] as GitlabJob | undefined;
    if (!job) throw new Error(`extends names a missing job ${name}`);
    const parents = job.extends === undefined ? [] : Array.isArray(job.extends) ? job.extends : [job.extends];
    const merged: GitlabJob = {};
    for (const p of parents) Object.assign(merged, resolve(p, [...seen, name]));
    const { extends: _, ...own } = job;
    return Object.assign(merged, own);
  };
  const defaults = (file.default ?? {}) as GitlabJob;
  return Object.fromEntries(
    Object.keys(file)
      .filter((k) => !k.startsWith(".") && !GITLAB_KEYWORDS.has(k))
      .map((k) => [k, { ...defaults, ...resolve(k) }]),
  );
}

/** Whether a job runs in a pipeline with these variables. */
export function gitlabJobRuns(job: GitlabJob, vars: GitlabVariables): boolean {
  if (!job.rules) return true;
  for (const rule of job.rules) {
    if (rule.changes !== undefined || rule.exists !== undefined)
      throw new Error("rules:changes/exists are not modelled");
    if (rule.if === undefined || gitlabExpression(rule.if, vars)) return rule.when !== "never";
  }
  return false;
}
