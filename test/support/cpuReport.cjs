/* global process, require */
// Loaded into the program's process with NODE_OPTIONS=--require by the preview timing test: on exit
// it writes the process's CPU time (all threads, user + system) and its lifetime to the file named
// in ATTIC_INFRA_CPU_REPORT. CPU time does not grow when other processes share the cores.
const { writeFileSync } = require("node:fs");

process.on("exit", () => {
  const { user, system } = process.cpuUsage();
  writeFileSync(
    process.env.ATTIC_INFRA_CPU_REPORT,
    JSON.stringify({
      cpuMs: Math.round((user + system) / 1000),
      wallMs: Math.round(process.uptime() * 1000),
    }),
  );
});
