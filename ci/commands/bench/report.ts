/**
 * `npm run bench`'s arithmetic and its two ways of saying it: medians per figure, each as a ratio to
 * the baseline measured in the same run (so a slow or busy machine does not read as a regression),
 * a table for people and JSON for comparing two runs (two commits, or before and after a change).
 */

/** One figure's samples: wall time and CPU time (all its processes, user + system) per run. */
export interface Samples {
  name: string;
  wallMs: number[];
  /** Empty where CPU time cannot be read (not Linux). */
  cpuMs: number[];
}

export interface Figure extends Samples {
  wallMedianMs: number;
  cpuMedianMs?: number;
  /** Median over the baseline's median (the baseline itself: 1). */
  wallRatio: number;
  cpuRatio?: number;
}

export interface BenchReport {
  commit?: string;
  node: string;
  cpus: number;
  /** The 1-minute load average when the run started. */
  load: number;
  runs: number;
  /** The baseline first. */
  figures: Figure[];
}

export function median(values: number[]): number {
  if (values.length === 0) throw new Error("median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/** Medians and ratios; `baseline` is the one every ratio divides by. */
export function summarize(baseline: Samples, others: Samples[]): Figure[] {
  const baseWall = median(baseline.wallMs);
  const baseCpu = baseline.cpuMs.length > 0 ? median(baseline.cpuMs) : undefined;
  return [baseline, ...others].map((s) => {
    const wallMedianMs = median(s.wallMs);
    const cpuMedianMs = s.cpuMs.length > 0 ? median(s.cpuMs) : undefined;
    return {
      ...s,
      wallMedianMs,
      wallRatio: round2(wallMedianMs / baseWall),
      ...(cpuMedianMs !== undefined && baseCpu
        ? { cpuMedianMs, cpuRatio: round2(cpuMedianMs / baseCpu) }
        : {}),
    };
  });
}

const ms = (n: number | undefined) => (n === undefined ? "-" : Math.round(n).toLocaleString("en-US"));
const ratio = (n: number | undefined) => (n === undefined ? "-" : n.toFixed(2));

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "))
    .join("\n");
}

export function formatReport(r: BenchReport): string {
  const head = `${r.runs} run${r.runs === 1 ? "" : "s"} per figure, medians; ×base: median / the baseline's median in this run`;
  const context = `node ${r.node}, ${r.cpus} CPUs, load ${r.load.toFixed(2)} at the start${r.commit ? `, commit ${r.commit}` : ""}`;
  const rows = [
    ["figure", "wall ms", "×base", "CPU ms", "×base"],
    ...r.figures.map((f) => [
      f.name,
      ms(f.wallMedianMs),
      ratio(f.wallRatio),
      ms(f.cpuMedianMs),
      ratio(f.cpuRatio),
    ]),
  ];
  return `${head}\n${context}\n\n${table(rows)}\n`;
}

/** The figures of `now` beside those of an `earlier` report (`--json` of another run), by ratio. */
export function formatComparison(earlier: BenchReport, now: BenchReport): string {
  const change = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? "-" : `${b >= a ? "+" : ""}${Math.round((b / a - 1) * 100)} %`;
  const rows = [
    ["figure", "×base before", "×base now", "change", "CPU ×base before", "CPU ×base now", "change"],
  ];
  for (const f of now.figures) {
    if (f.name === now.figures[0]!.name) continue;
    const e = earlier.figures.find((x) => x.name === f.name);
    rows.push([
      f.name,
      ratio(e?.wallRatio),
      ratio(f.wallRatio),
      change(e?.wallRatio, f.wallRatio),
      ratio(e?.cpuRatio),
      ratio(f.cpuRatio),
      change(e?.cpuRatio, f.cpuRatio),
    ]);
  }
  const label = (r: BenchReport) => `${r.commit ?? "?"} (${r.runs} runs, load ${r.load.toFixed(2)})`;
  return `before: ${label(earlier)}\nnow:    ${label(now)}\n\n${table(rows)}\n`;
}
