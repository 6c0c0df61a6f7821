// The table of scripts/bench-cpu-native.sh: Tessera against native llama-bench, per file, from the raw outputs.
//
//   node native-report.mjs --raw DIR --dir MODELS --files "q4_k_m q8_0" --threads N --prompt-tokens P --gen-tokens G
//                          [--rounds R] [--load-before L] [--load-after L]
//
// Markdown on stdout. llama-bench -o json gives one record per test (n_prompt > 0: prefill, n_gen > 0: decode, n_depth:
// tokens already in the cache), avg_ts in tokens/s. Prefill is compared at depth 0; decode at depth --prompt-tokens,
// where tessera bench decodes (after its prompt), with llama.cpp's decode from an empty cache shown beside it.
// tessera bench --json gives prefill_tokens_per_s and decode_tokens_per_s (medians). Raw files are
// ENGINE-FILE-roundK.json. Each round's two runs were made back to back, so a ratio is taken within a round; over
// several rounds the table gives each engine's median tok/s and the median of the per-round ratios, with their range.
import { readFileSync, existsSync, statSync } from "node:fs";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
for (const required of ["raw", "dir", "files"]) {
    if (!args[required]) { process.stderr.write(`native-report.mjs: --${required} is required\n`); process.exit(2); }
}
const rounds = Number(args.rounds ?? 1);
const fmt = (v, digits = 1) => (v === undefined || Number.isNaN(v) ? "n/a" : v.toFixed(digits));
const mb = (bytes) => (bytes / 1e6).toFixed(0);
const median = (values) => {
    const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
    if (sorted.length === 0) return NaN;
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
// "0.97" for one round; "0.97 (0.91-1.04)" for several: the median per-round ratio and the range.
const ratio = (values) => {
    const finite = values.filter((v) => Number.isFinite(v));
    const m = fmt(median(finite), 2);
    return finite.length > 1 ? `${m} (${fmt(Math.min(...finite), 2)}-${fmt(Math.max(...finite), 2)})` : m;
};

const rows = [];
for (const file of args.files.split(/\s+/).filter(Boolean)) {
    const lp = [], lg = [], lg0 = [], tp = [], tg = [];
    const depth = Number(args["prompt-tokens"]);
    for (let round = 1; round <= rounds; round++) {
        const llama = JSON.parse(readFileSync(`${args.raw}/llamacpp-${file}-round${round}.json`, "utf8"));
        const tessera = JSON.parse(readFileSync(`${args.raw}/tessera-${file}-round${round}.json`, "utf8"));
        lp.push(llama.find((r) => r.n_prompt > 0 && r.n_gen === 0 && (r.n_depth ?? 0) === 0)?.avg_ts);
        lg0.push(llama.find((r) => r.n_gen > 0 && r.n_prompt === 0 && (r.n_depth ?? 0) === 0)?.avg_ts);
        lg.push(llama.find((r) => r.n_gen > 0 && r.n_prompt === 0 && r.n_depth === depth)?.avg_ts);
        tp.push(tessera.prefill_tokens_per_s);
        tg.push(tessera.decode_tokens_per_s);
    }
    const prefillRatios = tp.map((t, i) => t / lp[i]), decodeRatios = tg.map((t, i) => t / lg[i]), emptyRatios = tg.map((t, i) => t / lg0[i]);
    const size = statSync(`${args.dir}/${args.preset ?? "llama-1b"}-${file}.gguf`).size;
    const rssFile = `${args.raw}/rss-${file}.txt`;
    const rss = existsSync(rssFile) ? Number(readFileSync(rssFile, "utf8").trim()) : undefined;
    rows.push(`| ${file} | ${fmt(median(tp))} | ${fmt(median(lp))} | ${ratio(prefillRatios)} | ${fmt(median(tg))} | ${fmt(median(lg))} | `
        + `**${ratio(decodeRatios)}** | ${fmt(median(lg0))} | ${ratio(emptyRatios)} | ${mb(size)} | ${rss === undefined ? "n/a" : mb(rss)} |`);
}
console.log(`threads ${args.threads}, ${args["prompt-tokens"]} prompt tokens, ${args["gen-tokens"]} generated, ${rounds} round(s); `
    + `load average before ${args["load-before"] ?? "?"}, after ${args["load-after"] ?? "?"}\n`);
console.log(`Decode at depth ${args["prompt-tokens"]} (after the prompt) on both engines; the last decode columns are llama.cpp from an empty cache.\n`);
console.log("| file | Tessera prefill | llama.cpp prefill | ratio | Tessera decode | llama.cpp decode | ratio | llama.cpp decode, empty cache | ratio | file MB | Tessera peak RSS MB |");
console.log("|---|---|---|---|---|---|---|---|---|---|---|");
for (const row of rows) console.log(row);
