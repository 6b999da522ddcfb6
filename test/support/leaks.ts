/** Words that mean a value was lost on the way: an undefined, an object or an Output in a string. */
const LEAKS = [
  /\bundefined\b/,
  /\[object Object\]/,
  /(?<![A-Za-z0-9+/])NaN(?![A-Za-z0-9+/=])/,
  /Calling \[toString\]/,
];

/** Each leak in a synth's resources, outputs and files, with where it is and its context. */
export function leaks(r: { resources: unknown; outputs: unknown; files: Record<string, string> }): string[] {
  const texts: [string, string][] = [
    ["resources", JSON.stringify(r.resources)],
    ["outputs", JSON.stringify(r.outputs)],
    ...Object.entries(r.files).map(([f, c]): [string, string] => [`files/${f}`, c]),
  ];
  return texts.flatMap(([where, text]) =>
    LEAKS.filter((re) => re.test(text)).map(
      (re) =>
        `${where}: ${re.source} near ${text.slice(Math.max(0, text.search(re) - 80), text.search(re) + 20)}`,
    ),
  );
}
