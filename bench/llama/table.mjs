// Builds run.sh's markdown table from the raw results in a directory:
// LABEL.tT.cairn.json (cairn bench infer --json-out), LABEL.tT.llama-bench.json
// (llama-bench -o json) and, when present, LABEL.tT.nlc.json (nlc_bench.mjs).
// Every figure is the median of the repetitions. Ratios are cairn / the faster of
// llama-bench and node-llama-cpp (where both ran), so a slow build of either side does
// not flatter cairn.
//
// usage: node table.mjs DIR
import fs from "node:fs";
import path from "node:path";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node table.mjs DIR");
  process.exit(2);
}
// null for a missing file or one still being written
const read = (f) => {
  try {
    return JSON.parse(fs.readFileSync(f, "utf8"));
  } catch {
    return null;
  }
};
const median = (v) => {
  const s = [...(v ?? [])].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? 0 : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const f1 = (x) => (x > 0 ? x.toFixed(1) : "-");
const ratio = (a, b) => (a > 0 && b > 0 ? `${(a / b).toFixed(2)}x` : "-");
const mib = (b) => (b / 1048576).toFixed(0);

const env = fs.existsSync(path.join(dir, "env.txt")) ? fs.readFileSync(path.join(dir, "env.txt"), "utf8") : "";
const runs = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith(".cairn.json"))
  .map((f) => {
    const m = f.match(/^(.*)\.t(\d+)\.cairn\.json$/);
    return { label: m[1], threads: Number(m[2]) };
  })
  .sort((a, b) => a.label.localeCompare(b.label) || a.threads - b.threads);

const rows = [];
const misses = [];
for (const { label, threads } of runs) {
  const base = path.join(dir, `${label}.t${threads}`);
  const c = read(`${base}.cairn.json`);
  const run = c.runs.find((r) => r.threads === threads) ?? c.runs[0];
  const lb = read(`${base}.llama-bench.json`) ?? [];
  const lpp = median(lb.find((x) => x.n_prompt > 0 && x.n_gen === 0)?.samples_ts);
  const ltg = median(lb.find((x) => x.n_gen > 0 && x.n_prompt === 0)?.samples_ts);
  const n = read(`${base}.nlc.json`);
  const npp = n?.pp_tokens_per_s ?? 0, ntg = n?.tg_tokens_per_s ?? 0;
  const bpp = Math.max(lpp, npp), btg = Math.max(ltg, ntg);
  const bound = run.bound_tokens_per_s;
  const boundText = c.weights_fit_in_cache ? `${f1(bound)} (fits in cache)` : f1(bound);
  rows.push(
    `| ${label} | ${threads} | ${f1(run.pp_tokens_per_s)} | ${f1(lpp)} | ${f1(npp)} | ${ratio(run.pp_tokens_per_s, bpp)} ` +
      `| ${f1(run.tg_tokens_per_s)} | ${f1(ltg)} | ${f1(ntg)} | ${ratio(run.tg_tokens_per_s, btg)} ` +
      `| ${boundText} | ${bound > 0 ? `${((100 * run.tg_tokens_per_s) / bound).toFixed(0)}%` : "-"} ` +
      `| ${mib(c.peak_rss_bytes)} / ${mib(c.rss_limit_bytes)} (${mib(c.peak_rss_bytes - (c.rss_before_model_bytes ?? 0))}) |`,
  );
  if (!(run.pp_tokens_per_s >= bpp)) misses.push(`${label} ${threads}t pp ${ratio(run.pp_tokens_per_s, bpp)}`);
  if (!(run.tg_tokens_per_s >= btg)) misses.push(`${label} ${threads}t tg ${ratio(run.tg_tokens_per_s, btg)}`);
}

console.log(env.trim().split("\n").map((l) => `- ${l}`).join("\n"));
console.log("");
console.log(
  "| model | threads | pp cairn | pp llama-bench | pp node-llama-cpp | pp ratio | tg cairn | tg llama-bench " +
    "| tg node-llama-cpp | tg ratio | tg bound | cairn tg / bound | cairn peak RSS / limit, MiB (without the process's own) |",
);
console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const r of rows) console.log(r);
console.log("");
console.log("Rates in tokens/s; ratios against the faster llama.cpp figure.");
console.log(misses.length ? `below llama.cpp: ${misses.join("; ")}` : "cairn >= llama.cpp everywhere");
