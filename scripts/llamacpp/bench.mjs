// llama.cpp reference speed through node-llama-cpp's prebuilt CPU binary (never compiles).
//
//   node bench.mjs --model FILE [--threads N] [--prompt-tokens P] [--gen-tokens G] [--reps R] [--seed S]
//
// Prints one JSON line to stdout; progress and llama.cpp logs go to stderr.
// Shaped like `tessera bench`: P synthetic prompt token ids evaluated in one batch (prefill), then
// G single-token greedy steps (decode), each step computing the full logits row and sampling it.
// One warm-up rep, then R timed reps; the KV cache is cleared between reps; reports the median.
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { performance } from "node:perf_hooks";
import os from "node:os";
import { readFileSync } from "node:fs";

function usage(message) {
    if (message) process.stderr.write(`bench.mjs: ${message}\n`);
    process.stderr.write("usage: node bench.mjs --model FILE [--threads N] [--prompt-tokens P] "
        + "[--gen-tokens G] [--reps R] [--seed S]\n");
    process.exit(2);
}

function parseArgs(argv) {
    const args = { model: null, threads: os.availableParallelism(), promptTokens: 128, genTokens: 64, reps: 3, seed: 1234 };
    const numeric = { "--threads": "threads", "--prompt-tokens": "promptTokens", "--gen-tokens": "genTokens",
        "--reps": "reps", "--seed": "seed" };
    for (let i = 0; i < argv.length; i++) {
        const flag = argv[i];
        if (flag === "--help" || flag === "-h") usage();
        const value = argv[++i];
        if (value === undefined) usage(`${flag} needs a value`);
        if (flag === "--model") args.model = value;
        else if (flag in numeric) {
            const n = Number(value);
            if (!Number.isInteger(n) || n < 1) usage(`${flag}: expected a positive integer, found ${value}`);
            args[numeric[flag]] = n;
        } else usage(`unknown flag ${flag}`);
    }
    if (!args.model) usage("--model is required");
    return args;
}

// Fixed pseudo-random token ids (xorshift32), skipping ids below 16 where control tokens usually live.
function syntheticTokens(count, vocabSize, seed) {
    let state = (seed >>> 0) || 1;
    const tokens = new Array(count);
    const low = Math.min(16, vocabSize - 1);
    for (let i = 0; i < count; i++) {
        state ^= state << 13; state >>>= 0;
        state ^= state >>> 17;
        state ^= state << 5; state >>>= 0;
        tokens[i] = low + (state % (vocabSize - low));
    }
    return tokens;
}

function median(values) {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function runOnce(sequence, prompt, genTokens) {
    await sequence.clearHistory();

    const prefillStart = performance.now();
    await sequence.evaluateWithoutGeneratingNewTokens(prompt);
    const prefillMillis = performance.now() - prefillStart;

    // Each next() evaluates exactly one token (the previous sample; the first is a fresh id) and
    // greedily samples the following one. yieldEogToken keeps a random model from stopping early.
    const generator = sequence.evaluate([prompt[0]], { temperature: 0, yieldEogToken: true });
    const decodeStart = performance.now();
    let numDecoded = 0;
    while (numDecoded < genTokens) {
        const step = await generator.next();
        if (step.done) throw new Error(`decode stopped after ${numDecoded} of ${genTokens} tokens`);
        numDecoded++;
    }
    const decodeMillis = performance.now() - decodeStart;
    await generator.return();

    return { prefillMillis, decodeMillis };
}

const args = parseArgs(process.argv.slice(2));
const llama = await getLlama({
    gpu: false,
    build: "never",          // use the prebuilt binary from @node-llama-cpp/linux-x64, or fail
    maxThreads: args.threads,
    logLevel: LlamaLogLevel.warn,
    logger: (level, message) => process.stderr.write(`[llama.cpp ${level}] ${message}\n`),
});
const model = await llama.loadModel({ modelPath: args.model, gpuLayers: 0 });
const context = await model.createContext({
    contextSize: args.promptTokens + args.genTokens + 16,
    batchSize: Math.max(args.promptTokens, 1),
    threads: args.threads,
    sequences: 1,
});
const sequence = context.getSequence();
// Vocabulary size = rows of token_embd.weight ([dim, vocabSize] in GGUF order).
const tokenEmbedding = (model.fileInfo.fullTensorInfo ?? model.fileInfo.tensorInfo ?? [])
    .find((tensor) => tensor.name === "token_embd.weight");
const vocabSize = Number(tokenEmbedding?.dimensions?.[1] ?? model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length);
if (!Number.isInteger(vocabSize) || vocabSize < 2) throw new Error(`${args.model}: cannot read vocabulary size, found ${vocabSize}`);
const prompt = syntheticTokens(args.promptTokens, vocabSize, args.seed);

process.stderr.write(`llama.cpp: ${args.model} threads=${context.currentThreads} ctx=${context.contextSize} `
    + `batch=${context.batchSize} vocab=${vocabSize} P=${args.promptTokens} G=${args.genTokens} reps=${args.reps}+1 warm-up\n`);

await runOnce(sequence, prompt, args.genTokens);
const prefill = [], decode = [];
for (let rep = 0; rep < args.reps; rep++) {
    const { prefillMillis, decodeMillis } = await runOnce(sequence, prompt, args.genTokens);
    prefill.push(args.promptTokens * 1000 / prefillMillis);
    decode.push(args.genTokens * 1000 / decodeMillis);
    process.stderr.write(`  rep ${rep + 1}: prefill ${prefill.at(-1).toFixed(1)} tok/s, decode ${decode.at(-1).toFixed(1)} tok/s\n`);
}

const result = {
    engine: "llama.cpp",
    runtime: "node-llama-cpp@" + JSON.parse(readFileSync(new URL("./node_modules/node-llama-cpp/package.json", import.meta.url), "utf8")).version,
    model: args.model,
    threads: context.currentThreads,
    prompt_tokens: args.promptTokens,
    gen_tokens: args.genTokens,
    reps: args.reps,
    prefill_tokens_per_s: median(prefill),
    decode_tokens_per_s: median(decode),
    prefill_samples: prefill,
    decode_samples: decode,
};
process.stdout.write(JSON.stringify(result) + "\n");
await context.dispose();
await model.dispose();
await llama.dispose();
