// The table of scripts/bench-cpu-native.sh: Tessera against native llama-bench, per file, from the raw outputs.
//
//   node native-report.mjs --raw DIR --dir MODELS --files "q4_k_m q8_0" --threads N --prompt-tokens P --gen-tokens G
//                          [--load-before L] [--load-after L]
//
// Markdown on stdout. llama-bench -o json gives one record per test (n_prompt > 0: prefill, n_gen > 0: decode),
// avg_ts in tokens/s; tessera bench --json gives prefill_tokens_per_s and decode_tokens_per_s (medians).
import { readFileSync, existsSync, statSync } from "node:fs";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
for (const required of ["raw", "dir", "files"]) {
    if (!args[required]) { process.stderr.write(`native-report.mjs: --${required} is required\n`); process.exit(2); }
}
const fmt = (v, digits = 1) => (v === undefined || Number.isNaN(v) ? "n/a" : v.toFixed(digits));
const mb = (bytes) => (bytes / 1e6).toFixed(0);

const rows = [];
for (const file of args.files.split(/\s+/).filter(Boolean)) {
    const llama = JSON.parse(readFileSync(`${args.raw}/llamacpp-${file}.json`, "utf8"));
    const tessera = JSON.parse(readFileSync(`${args.raw}/tessera-${file}.json`, "utf8"));
    const lp = llama.find((r) => r.n_prompt > 0 && r.n_gen === 0)?.avg_ts;
    const lg = llama.find((r) => r.n_gen > 0 && r.n_prompt === 0)?.avg_ts;
    const tp = tessera.prefill_tokens_per_s, tg = tessera.decode_tokens_per_s;
    const size = statSync(`${args.dir}/${args.preset ?? "llama-1b"}-${file}.gguf`).size;
    const rssFile = `${args.raw}/rss-${file}.txt`;
    const rss = existsSync(rssFile) ? Number(readFileSync(rssFile, "utf8").trim()) : undefined;
    rows.push(`| ${file} | ${fmt(tp)} | ${fmt(lp)} | ${fmt(tp / lp, 2)} | ${fmt(tg)} | ${fmt(lg)} | **${fmt(tg / lg, 2)}** | `
        + `${mb(size)} | ${rss === undefined ? "n/a" : mb(rss)} |`);
}
console.log(`threads ${args.threads}, ${args["prompt-tokens"]} prompt tokens, ${args["gen-tokens"]} generated; `
    + `load average before ${args["load-before"] ?? "?"}, after ${args["load-after"] ?? "?"}\n`);
console.log("| file | Tessera prefill | llama.cpp prefill | ratio | Tessera decode | llama.cpp decode | ratio | file MB | Tessera peak RSS MB |");
console.log("|---|---|---|---|---|---|---|---|---|");
for (const row of rows) console.log(row);
