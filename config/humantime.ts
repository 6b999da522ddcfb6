// atticd parses durations with the Rust `humantime` crate ("12 hours", "90 days", "1h 30m").
// We accept the same grammar so a value that passes here is one atticd accepts, and we need the
// number of seconds ourselves for the cache API's retention period.

const UNIT_SECONDS: Record<string, number> = {
  nsec: 1e-9,
  nanos: 1e-9,
  ns: 1e-9,
  usec: 1e-6,
  micros: 1e-6,
  us: 1e-6,
  msec: 1e-3,
  millis: 1e-3,
  ms: 1e-3,
  seconds: 1,
  second: 1,
  sec: 1,
  secs: 1,
  s: 1,
  minutes: 60,
  minute: 60,
  min: 60,
  mins: 60,
  m: 60,
  hours: 3600,
  hour: 3600,
  hr: 3600,
  hrs: 3600,
  h: 3600,
  days: 86400,
  day: 86400,
  d: 86400,
  weeks: 604800,
  week: 604800,
  w: 604800,
  months: 2_630_016,
  month: 2_630_016,
  M: 2_630_016,
  years: 31_557_600,
  year: 31_557_600,
  y: 31_557_600,
};

/**
 * Seconds in a humantime duration, or undefined when humantime would reject the text. Like
 * humantime, a bare number has no unit and is rejected: zero is written "0s".
 */
export function parseHumantime(text: string): number | undefined {
  const trimmed = text.trim();
  const part = /(\d+)\s*([A-Za-z]+)\s*/y;
  let total = 0;
  let pos = 0;
  let parts = 0;
  while (pos < trimmed.length) {
    part.lastIndex = pos;
    const m = part.exec(trimmed);
    if (!m) return undefined;
    const unit = UNIT_SECONDS[m[2]!];
    if (unit === undefined) return undefined;
    total += Number(m[1]) * unit;
    pos = part.lastIndex;
    parts++;
  }
  return parts > 0 ? total : undefined;
}
