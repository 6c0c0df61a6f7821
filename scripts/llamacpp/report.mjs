// Turns the raw files scripts/bench-cpu.sh collected into OUT/results.json and a markdown table.
//
//   node report.mjs --raw DIR --out FILE --types "q8_0 q4_0" --threads N --prompt-tokens P
//                   --gen-tokens G --reps R --rounds K [--load-before "a b c"] [--load-after "a b c"]
//
// Exit 1 when an expected measurement is missing or unreadable; slow results are not errors.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { execFileSync, spawnSync } from "node:child_process";
import os from "node:os";

const DECODE_TARGET = 0.8;   // tessera decode >= 0.8x llama.cpp (issue acceptance)
const PREFILL_TARGET = 0.5;  // tessera prefill >= 0.5x llama.cpp
const RSS_HEADROOM_BYTES = 300e6;  // resident memory < file size + 300 MB

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const raw = args.raw;
const errors = [];

function readJson(path) {
    if (!existsSync(path)) { errors.push(`${path}: missing`); return null; }
    try { return JSON.parse(readFileSync(path, "utf8")); }
    catch (error) { errors.push(`${path}: ${error.message}`); return null; }
}

// An engine's stdout should be one JSON object; tolerate log lines around it or pretty-printing.
function readEngineJson(path) {
    if (!existsSync(path)) return null;
    const text = readFileSync(path, "utf8").trim();
    const wanted = (o) => o && typeof o === "object" && Number.isFinite(o.prefill_tokens_per_s) && Number.isFinite(o.decode_tokens_per_s);
    try { const whole = JSON.parse(text); if (wanted(whole)) return whole; } catch { /* fall through */ }
    for (const line of text.split("\n").reverse()) {
        try { const o = JSON.parse(line.trim()); if (wanted(o)) return o; } catch { /* next line */ }
    }
    const start = text.indexOf("{"), end = text.lastIndexOf("}");
    if (start >= 0 && end > start) {
        try { const o = JSON.parse(text.slice(start, end + 1)); if (wanted(o)) return o; } catch { /* none */ }
    }
    errors.push(`${path}: expected a JSON object with numeric prefill_tokens_per_s and decode_tokens_per_s, found ${JSON.stringify(text.slice(0, 200))}`);
    return null;
}

function median(values) {
    if (values.length === 0) return null;
    const sorted = [...values].sort((a, b) => a - b), mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
const ratio = (a, b) => (a != null && b != null && b > 0 ? a / b : null);

function engineResult(engine, type) {
    const rounds = [];
    for (let round = 1; round <= Number(args.rounds); round++) {
        const o = readEngineJson(`${raw}/${engine}-${type}-round${round}.txt`);
        if (o) rounds.push(o);
    }
    if (rounds.length === 0) return null;
    return {
        prefill_tokens_per_s: median(rounds.map((o) => o.prefill_tokens_per_s)),
        decode_tokens_per_s: median(rounds.map((o) => o.decode_tokens_per_s)),
        rounds,
    };
}

function quiet(command, commandArgs) {
    try { return execFileSync(command, commandArgs, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim(); }
    catch { return null; }
}

const bandwidth = readJson(`${raw}/membw.json`);
const bytesPerSecond = bandwidth ? bandwidth.read_gb_per_s * 1e9 : null;
const rss = existsSync(`${raw}/rss.json`) ? readJson(`${raw}/rss.json`) : null;
const types = args.types.trim().split(/\s+/);

const rows = types.map((type) => {
    const weights = readJson(`${raw}/weights-${type}.json`);
    const tessera = engineResult("tessera", type), llamacpp = engineResult("llamacpp", type);
    const limit = weights && bytesPerSecond ? bytesPerSecond / weights.weight_bytes_per_token : null;
    const row = {
        type,
        file_bytes: weights?.file_bytes ?? null,
        weight_bytes_per_token: weights?.weight_bytes_per_token ?? null,
        bandwidth_limit_tokens_per_s: limit,
        tessera, llamacpp,
        prefill_ratio: ratio(tessera?.prefill_tokens_per_s, llamacpp?.prefill_tokens_per_s),
        decode_ratio: ratio(tessera?.decode_tokens_per_s, llamacpp?.decode_tokens_per_s),
        tessera_decode_fraction_of_limit: ratio(tessera?.decode_tokens_per_s, limit),
        llamacpp_decode_fraction_of_limit: ratio(llamacpp?.decode_tokens_per_s, limit),
    };
    row.meets_decode_target = row.decode_ratio == null ? null : row.decode_ratio >= DECODE_TARGET;
    row.meets_prefill_target = row.prefill_ratio == null ? null : row.prefill_ratio >= PREFILL_TARGET;
    return row;
});

let memory = null;
const q4 = rows.find((r) => r.type === "q4_0");
if (rss && q4?.file_bytes) {
    const limitBytes = q4.file_bytes + RSS_HEADROOM_BYTES;
    memory = { model: "llama-1b-q4_0.gguf", peak_rss_bytes: rss.peak_rss_bytes, limit_bytes: limitBytes,
        method: rss.method, under_limit: rss.peak_rss_bytes < limitBytes };
}

const results = {
    date: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model, logical_cpus: os.cpus().length, memory_bytes: os.totalmem(),
        load_average_before: args["load-before"], load_average_after: args["load-after"] },
    versions: {
        tessera_commit: quiet("git", ["rev-parse", "--short", "HEAD"]),
        java: spawnSync("java", ["-version"], { encoding: "utf8" }).stderr?.split("\n")[0] || null,  // -version prints to stderr
        node: process.version,
        node_llama_cpp: readJson(new URL("./node_modules/node-llama-cpp/package.json", import.meta.url).pathname)?.version ?? null,
    },
    settings: { threads: Number(args.threads), prompt_tokens: Number(args["prompt-tokens"]), gen_tokens: Number(args["gen-tokens"]),
        reps: Number(args.reps), rounds: Number(args.rounds) },
    bandwidth: bandwidth && { read_gb_per_s: bandwidth.read_gb_per_s, buffer_bytes: bandwidth.buffer_bytes, threads: bandwidth.threads, passes: bandwidth.passes },
    targets: { decode_ratio: DECODE_TARGET, prefill_ratio: PREFILL_TARGET, rss_headroom_bytes: RSS_HEADROOM_BYTES },
    rows,
    memory,
    errors,
};
writeFileSync(args.out, JSON.stringify(results, null, 2) + "\n");

const f1 = (x) => (x == null ? "–" : x.toFixed(1));
const f2 = (x) => (x == null ? "–" : x.toFixed(2));
const f3 = (x) => (x == null ? "–" : x.toFixed(3));  // ratios: 0.7996 must not print as a passing 0.80
const mb = (x) => (x == null ? "–" : (x / 1e6).toFixed(0) + " MB");
const mark = (ok) => (ok == null ? "" : ok ? " ✓" : " ✗");
const out = [];
out.push(`CPU: ${results.machine.cpu}, ${results.settings.threads} threads, P=${args["prompt-tokens"]} G=${args["gen-tokens"]}, `
    + `median of ${args.reps} reps × ${args.rounds} round(s); read bandwidth ${bandwidth ? bandwidth.read_gb_per_s.toFixed(1) : "–"} GB/s; `
    + `load average ${args["load-before"]} → ${args["load-after"]}`);
out.push("");
out.push("| type | file | weights read/token | BW limit tok/s | tessera prefill | llama.cpp prefill | prefill ratio (≥0.5) | tessera decode | llama.cpp decode | decode ratio (≥0.8) | tessera decode / BW limit | llama.cpp decode / BW limit |");
out.push("|---|---|---|---|---|---|---|---|---|---|---|---|");
for (const r of rows) {
    out.push(`| ${r.type} | ${mb(r.file_bytes)} | ${mb(r.weight_bytes_per_token)} | ${f1(r.bandwidth_limit_tokens_per_s)} `
        + `| ${f1(r.tessera?.prefill_tokens_per_s)} | ${f1(r.llamacpp?.prefill_tokens_per_s)} | ${f3(r.prefill_ratio)}${mark(r.meets_prefill_target)} `
        + `| ${f1(r.tessera?.decode_tokens_per_s)} | ${f1(r.llamacpp?.decode_tokens_per_s)} | ${f3(r.decode_ratio)}${mark(r.meets_decode_target)} `
        + `| ${f2(r.tessera_decode_fraction_of_limit)} | ${f2(r.llamacpp_decode_fraction_of_limit)} |`);
}
if (memory) {
    out.push("");
    out.push(`Peak RSS of \`tessera generate\` on llama-1b-q4_0.gguf: ${mb(memory.peak_rss_bytes)} `
        + `(limit: file ${mb(q4.file_bytes)} + 300 MB = ${mb(memory.limit_bytes)})${mark(memory.under_limit)}`);
}
for (const error of errors) out.push(`\nerror: ${error}`);
process.stdout.write(out.join("\n") + "\n");
process.exit(errors.length ? 1 : 0);
