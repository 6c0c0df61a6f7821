package dev.tessera.serving.cli;

import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.kernels.cpu.CpuTopology;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.scheduler.placement.ExpertAffinity;
import dev.tessera.scheduler.placement.RoutingRecorder;
import dev.tessera.scheduler.placement.RoutingTrace;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * {@code tessera trace-routing}: runs a mixture-of-experts model in process on the CPU over a file of prompts (prefill,
 * then greedy decoding) and writes which experts every token went to at every layer ({@link RoutingTrace}).
 */
public final class TraceRoutingCommand implements Command {
    private static final Set<String> KNOWN = Set.of("model", "prompts", "out", "gen-tokens", "threads");

    @Override public String name() { return "trace-routing"; }

    @Override public String summary() { return "record a MoE model's expert routing over prompts (for tessera place)"; }

    @Override
    public String usage() {
        return """
                usage: tessera trace-routing --model MODEL.gguf --prompts FILE --out TRACE [--gen-tokens 16] [--threads N]

                Runs the model on the CPU over each non-empty line of FILE (a BOS is prepended as by generate), then
                greedy-decodes --gen-tokens tokens, and writes per token, per MoE layer, the top-k expert ids:

                  tessera-routing-trace 1
                  model NAME layers L experts E top_k K
                  SEQUENCE POSITION e,e e,e ...      (one group per layer, first choice first)

                Sequence numbers are the prompt's line index among non-empty lines. Prints a summary on stderr
                (tokens, mean top-1 P(j at l+1 | i at l)) and TRACE on stdout.

                  --model FILE        a mixture-of-experts GGUF (llama with expert_count, qwen2moe)
                  --prompts FILE      one prompt per line
                  --out TRACE         the trace file (replaced)
                  --gen-tokens N      greedy tokens after each prompt (default 16; 0: prompts only)
                  --threads N         CPU threads (default: physical cores)""";
    }

    @Override
    public int run(List<String> argv) throws Exception {
        CliArgs args = new CliArgs(argv, KNOWN, Set.of());
        Path model = Path.of(args.require("model"));
        Path promptsFile = Path.of(args.require("prompts"));
        Path out = Path.of(args.require("out"));
        int genTokens = args.getInt("gen-tokens", 16, 0, 1 << 16);
        int threads = args.getInt("threads", CpuTopology.physicalCores(), 1, 1024);
        if (!Files.isRegularFile(promptsFile)) throw new CliArgs.UsageException("--prompts: " + promptsFile + " is not a file");
        List<String> prompts = new ArrayList<>();
        for (String line : Files.readAllLines(promptsFile, StandardCharsets.UTF_8)) if (!line.isBlank()) prompts.add(line);
        if (prompts.isEmpty()) throw new CliArgs.UsageException("--prompts: " + promptsFile + " has no non-empty line");

        try (LoadedModel m = ModelLoader.load(model, new CpuBackend(threads), ModelLoader.DEFAULT_MAX_BATCH_TOKENS)) {
            ModelConfig c = m.config();
            if (!c.isMoe()) {
                System.err.println("tessera trace-routing: " + model + " is not a mixture-of-experts model (no expert_count)");
                return 1;
            }
            String name = m.file().getString("general.name", model.getFileName().toString());
            int lead = c.moe().leadingDenseLayers();
            if (lead > 0)
                System.err.println("tessera trace-routing: the first " + lead + " layer(s) are dense; the trace's layer 0 is model layer " + lead);
            RoutingRecorder recorder = new RoutingRecorder(name, c.numLayers() - lead, c.moe().numExperts(), c.moe().numExpertsUsed(), lead);
            LlamaModel lm = m.model();
            lm.observeRouting(recorder);
            long start = System.nanoTime();
            int[] next = new int[1];
            for (int seq = 0; seq < prompts.size(); seq++) {
                int[] tokens = m.tokenizer().encode(prompts.get(seq), true, false);
                int total = Math.min(tokens.length + genTokens, c.contextLength());
                if (tokens.length >= c.contextLength()) tokens = java.util.Arrays.copyOf(tokens, c.contextLength() - 1);
                try (KvCache cache = lm.newKvCache(total + 1)) {
                    for (int pos = 0; pos < tokens.length; ) {
                        int n = Math.min(lm.maxBatchTokens(), tokens.length - pos);
                        int[] chunk = java.util.Arrays.copyOfRange(tokens, pos, pos + n);
                        boolean last = pos + n == tokens.length;
                        lm.forwardArgmax(chunk, AttentionBatch.single(cache, pos, n), last ? new int[] {n - 1} : new int[0], next);
                        recorder.endStep(seq, pos);
                        pos += n;
                    }
                    for (int pos = tokens.length, i = 0; i < genTokens && pos < total; i++, pos++) {
                        if (next[0] < 0 || m.tokenizer().isEndOfGeneration(next[0])) break;
                        lm.forwardArgmax(new int[] {next[0]}, AttentionBatch.single(cache, pos, 1), new int[] {0}, next);
                        recorder.endStep(seq, pos);
                    }
                }
            }
            lm.observeRouting(null);
            RoutingTrace trace = recorder.trace();
            trace.write(out);
            System.err.printf(Locale.ROOT, "trace-routing: %d prompts, %d tokens, %d layers x %d experts (top-%d) in %.1f s; mean top P(j at l+1 | i at l) %.3f%n",
                    prompts.size(), trace.numTokens(), trace.numLayers(), trace.numExperts(), trace.topK(),
                    (System.nanoTime() - start) / 1e9, ExpertAffinity.of(trace).meanTopProbability());
            System.out.println(out);
            return 0;
        }
    }
}
