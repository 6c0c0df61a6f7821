package dev.tessera.serving.cli;

import dev.tessera.kernels.cpu.CpuTopology;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.sample.SamplingParams;
import dev.tessera.models.tokenizer.StreamingDecoder;
import dev.tessera.scheduler.engine.EngineConfig;
import dev.tessera.scheduler.engine.EngineRequest;
import dev.tessera.scheduler.engine.SingleRequest;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/** {@code tessera generate}: one prompt in, its continuation streamed to stdout. */
public final class GenerateCommand implements Command {
    private static final Set<String> OPTIONS = ModelEngines.withRunnerOptions(Set.of("model", "prompt", "max-tokens", "temperature", "top-p", "top-k",
            "min-p", "repeat-penalty", "presence-penalty", "frequency-penalty", "seed", "threads", "device"));

    @Override public String name() { return "generate"; }

    @Override public String summary() { return "generate text from a prompt"; }

    @Override
    public String usage() {
        return """
                usage: tessera generate --model PATH --prompt TEXT [options]

                Prints only the generated text on stdout (logs and timings go to stderr).
                For a 'llama' (SentencePiece) tokenizer a BOS token is prepended, as llama.cpp does.

                  --model PATH             GGUF model file (required)
                  --prompt TEXT            prompt text; "" starts from BOS alone (required)
                  --max-tokens N           tokens to generate (default 256)
                  --temperature T          0 = greedy (default 0.8)
                  --top-p P                nucleus sampling (default 0.95; 1 = off)
                  --top-k K                keep the K most likely tokens (default 40; 0 = off)
                  --min-p P                drop tokens below P x the top probability (default 0.05; 0 = off)
                  --repeat-penalty R       CTRL-style repetition penalty (default 1 = off)
                  --presence-penalty P     OpenAI presence penalty (default 0)
                  --frequency-penalty F    OpenAI frequency penalty (default 0)
                  --seed S                 fixed seed: identical output on every run (default random)
                  --threads N              CPU threads (default: physical cores)
                  --device auto|cpu|cuda[:N]  compute device (default auto: CUDA when a driver and device exist)""" + TensorParallelOptions.USAGE
                + AttentionOffloadOptions.USAGE + ExpertParallelOptions.USAGE;
    }

    @Override
    public int run(List<String> argList) throws Exception {
        CliArgs args = new CliArgs(argList, OPTIONS, Set.of());
        Path model = Path.of(args.require("model"));
        String prompt = args.require("prompt");
        int maxTokens = args.getInt("max-tokens", 256, 1, 1 << 24);
        SamplingParams params = samplingParams(args);
        int threads = args.getInt("threads", CpuTopology.physicalCores(), 1, 1024);
        long t0 = System.nanoTime();
        // One request on the same batching engine the server runs, local or tensor-parallel (--tp-workers).
        // KV room for this one request only. Each token of the prompt covers at least one of its UTF-8 bytes (byte
        // fallback at worst); BOS, EOS and SentencePiece's dummy-prefix piece may add three more.
        long need = (long) prompt.getBytes(StandardCharsets.UTF_8).length + 3 + maxTokens;
        EngineConfig config = EngineConfig.defaults(1, ModelLoader.DEFAULT_MAX_BATCH_TOKENS, 1)
                .withSequenceTokensCap((int) Math.min(Integer.MAX_VALUE, need));
        try (ModelEngines.Opened m = ModelEngines.open(args, model, config, threads)) {
            long t1 = System.nanoTime();
            int[] tokens = m.tokenizer().encode(prompt, true, false);
            if (tokens.length == 0) throw new CliArgs.UsageException("the prompt produced no tokens and the model adds no BOS");
            if (tokens.length >= m.engine().maxSequenceTokens())
                throw new CliArgs.UsageException("the prompt of " + tokens.length + " tokens does not fit the context of " + m.engine().maxSequenceTokens());
            PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false, StandardCharsets.UTF_8);
            // Right after BOS, SentencePiece's dummy-prefix space of the first piece is not part of the text.
            StreamingDecoder decoder = new StreamingDecoder(m.tokenizer(), prompt.isEmpty());
            SingleRequest.Result r = SingleRequest.run(m.engine(), new EngineRequest("generate", tokens, params, maxTokens,
                    m.tokenizer()::isEndOfGeneration, false), token -> {
                        out.print(decoder.feed(token));
                        out.flush();
                        return true;
                    });
            out.print(decoder.flush());
            out.println();
            out.flush();
            System.err.printf(Locale.ROOT, "tessera: loaded in %.2f s; prompt %d tokens at %.1f tok/s; generated %d tokens at %.1f tok/s (%s, %s)%n",
                    (t1 - t0) / 1e9, r.numPromptTokens(), r.numPromptTokens() / Math.max(1e-9, r.prefillNanos() / 1e9),
                    r.numTokens(), Math.max(0, r.numTokens() - 1) / Math.max(1e-9, r.decodeNanos() / 1e9), r.finishReason(), m.where());
            for (String line : m.runner().stats()) System.err.println("tessera: " + line);
        }
        return 0;
    }

    static SamplingParams samplingParams(CliArgs args) {
        SamplingParams p = SamplingParams.defaults()
                .withTemperature((float) args.getDouble("temperature", 0.8, 0, SamplingParams.MAX_TEMPERATURE))
                .withTopP((float) args.getDouble("top-p", 0.95, 0, 1))
                .withTopK(args.getInt("top-k", 40, 0, Integer.MAX_VALUE))
                .withMinP((float) args.getDouble("min-p", 0.05, 0, 1))
                .withRepetitionPenalty((float) args.getDouble("repeat-penalty", 1, 0.01, SamplingParams.MAX_PENALTY))
                .withPresencePenalty((float) args.getDouble("presence-penalty", 0, -2, 2))
                .withFrequencyPenalty((float) args.getDouble("frequency-penalty", 0, -2, 2));
        if (args.has("seed")) p = p.withSeed(args.getLong("seed", 0));
        return p;
    }
}
