package dev.tessera.serving.cli;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.scheduler.engine.EngineConfig;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.kernels.cpu.CpuTopology;
import dev.tessera.serving.ServedModel;
import dev.tessera.serving.ServingConfig;
import dev.tessera.serving.ServingContext;
import dev.tessera.serving.http.edge.EdgeLimits;
import dev.tessera.serving.http.edge.EdgeServer;
import dev.tessera.serving.text.ReasoningSplitter;
import io.helidon.webserver.WebServer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;

/** {@code tessera serve}: the OpenAI-compatible HTTP server. */
public final class ServeCommand implements Command {
    private static final Set<String> OPTIONS = union(Set.of("model", "served-model-name", "host", "port", "api-key",
            "max-queue", "max-num-seqs", "max-num-batched-tokens", "kv-cache-memory", "kv-cache-type", "threads", "max-body-bytes", "device",
            "max-connections", "header-timeout", "idle-timeout", "shutdown-grace", "reasoning-format"), ModelEngines.withRunnerOptions(Set.of()));

    private static final Set<String> FLAGS = Set.of("no-enable-prefix-caching", "no-warmup");
    /**
     * Helidon logs at INFO through java.util.logging; its "bound for socket" line names the routes' internal
     * loopback port and reads as a second server. Held here so the level is not collected with the logger.
     */
    private static final java.util.logging.Logger HELIDON_LOG = java.util.logging.Logger.getLogger("io.helidon");

    private static Set<String> union(Set<String> a, Set<String> b) {
        Set<String> all = new java.util.HashSet<>(a);
        all.addAll(b);
        return Set.copyOf(all);
    }

    @Override public String name() { return "serve"; }

    @Override public String summary() { return "serve a model over an OpenAI-compatible HTTP API"; }

    @Override
    public String usage() {
        return """
                usage: tessera serve --model PATH [options]

                Serves /v1/completions, /v1/chat/completions and /v1/models (OpenAI-compatible), plus /health,
                /ready (503 until the model is loaded) and /metrics (Prometheus). Listens first, then loads the
                model; prints 'listening on http://HOST:PORT' to stderr once listening. One log line per request.

                  --model PATH              GGUF model file (required)
                  --served-model-name NAME  the name clients send as "model" (default: file name without .gguf)
                  --host HOST               address to bind (default 127.0.0.1)
                  --port N                  port; 0 picks a free one (default 8000)
                  --api-key KEY             require 'Authorization: Bearer KEY' on /v1/ (default: $TESSERA_API_KEY,
                                            none when unset)
                  --max-queue N             requests that may wait for the engine; more get 429 (default 64)
                  --max-num-seqs N          requests batched together each step (default 16; 1 = one at a time)
                  --max-num-batched-tokens N  tokens in one step: decode tokens plus prefill chunks (default 256)
                  --kv-cache-memory SIZE    bytes for the paged KV cache, e.g. 2GiB (default: room for every sequence
                                            at full context, at most a quarter of the Java heap)
                  --kv-cache-type f32|f16   element type of cached keys and values (default f32)
                  --no-enable-prefix-caching  do not reuse KV blocks of earlier prompts
                  --no-warmup               report ready without first running throwaway requests (the first
                                            requests then run while the JIT compiles: seconds slower)
                  --threads N               CPU threads (default: physical cores)
                  --max-body-bytes N        largest request body; larger gets 413 (default 4194304)
                  --reasoning-format none|deepseek|auto  deepseek (or auto): chat answers carry the text of <think>
                                            blocks (Qwen3, DeepSeek-R1) in message.reasoning_content /
                                            delta.reasoning_content instead of the content, as llama-server's option;
                                            a request's "reasoning_format" overrides it (default none)
                  --device auto|cpu|cuda    compute device (default auto)
                  --max-connections N       open client connections; one more gets 503 and is closed (default:
                                            from the open-file limit, at most 1024)
                  --header-timeout SECONDS  a request head must arrive within this; else 408 and close (default 10)
                  --idle-timeout SECONDS    a kept-alive connection with no request is closed after this, and a
                                            request body must arrive within it (default 60)
                  --shutdown-grace SECONDS  on SIGTERM or Ctrl-C, running requests may finish for this long; then
                                            each stream gets an error event and [DONE] (default 30)

                Errors and limits (413, 431, 408, 503 and the rest) are listed in the README.

                With --tp-workers the layers run tensor-parallel over worker processes ('tessera worker'); a
                request that loses a worker fails with 503 naming it, and serving resumes once it is back.""" + TensorParallelOptions.USAGE
                + AttentionOffloadOptions.USAGE + ExpertParallelOptions.USAGE;
    }

    @Override
    public int run(List<String> argList) throws Exception {
        CliArgs args = new CliArgs(argList, OPTIONS, FLAGS);
        HELIDON_LOG.setLevel(java.util.logging.Level.WARNING);
        // Jinjava's SLF4J finds no provider and would say so in three warning lines at model load.
        if (System.getProperty("slf4j.internal.verbosity") == null) System.setProperty("slf4j.internal.verbosity", "ERROR");
        Path model = Path.of(args.require("model"));
        if (!Files.isRegularFile(model)) throw new CliArgs.UsageException("--model " + model + " is not a file");
        String name = args.get("served-model-name", ServingConfig.defaultServedName(model));
        String host = args.get("host", "127.0.0.1");
        int port = args.getInt("port", 8000, 0, 65535);
        String apiKey = args.get("api-key", System.getenv("TESSERA_API_KEY"));
        int maxQueue = args.getInt("max-queue", 64, 1, 1 << 20);
        int maxNumSeqs = args.getInt("max-num-seqs", ServedModel.DEFAULT_MAX_NUM_SEQS, 1, ModelLoader.DEFAULT_MAX_BATCH_TOKENS);
        int maxBatched = args.getInt("max-num-batched-tokens", ModelLoader.DEFAULT_MAX_BATCH_TOKENS, maxNumSeqs, 1 << 16);
        EngineConfig engineConfig = EngineConfig.defaults(maxNumSeqs, maxBatched, maxQueue)
                .withKvCache(args.getBytes("kv-cache-memory", 0), kvCacheType(args.get("kv-cache-type", "f32")))
                .withPrefixCaching(!args.has("no-enable-prefix-caching"));
        int threads = args.getInt("threads", CpuTopology.physicalCores(), 1, 1024);
        long maxBodyBytes = args.getLong("max-body-bytes", ServingConfig.DEFAULT_MAX_BODY_BYTES);
        if (maxBodyBytes < 1 || maxBodyBytes > Integer.MAX_VALUE - 8) {
            throw new CliArgs.UsageException("--max-body-bytes must be in [1, " + (Integer.MAX_VALUE - 8) + "], got " + maxBodyBytes);
        }
        int maxConnections = args.getInt("max-connections", EdgeLimits.defaultMaxConnections(), 1, 1 << 20);
        double headerTimeout = args.getDouble("header-timeout", EdgeLimits.DEFAULT_HEADER_TIMEOUT_MILLIS / 1000.0, 0.001, 86400);
        double idleTimeout = args.getDouble("idle-timeout", EdgeLimits.DEFAULT_IDLE_TIMEOUT_MILLIS / 1000.0, 0.001, 86400);
        double shutdownGrace = args.getDouble("shutdown-grace", 30, 0, 86400);
        EdgeLimits limits = EdgeLimits.of(maxConnections, maxBodyBytes)
                .withTimeouts(Math.round(headerTimeout * 1000), Math.round(idleTimeout * 1000));

        String reasoningFormat = args.get("reasoning-format", "none");
        // The request field's names: auto splits as deepseek does (the only reasoning format served).
        Boolean splitReasoning = ReasoningSplitter.splits(reasoningFormat);
        if (splitReasoning == null)
            throw new CliArgs.UsageException("--reasoning-format must be none, deepseek or auto, got '" + reasoningFormat + "'");

        long t0 = System.nanoTime();
        ServingContext context = new ServingContext(new ServingConfig(name, apiKey, maxBodyBytes, splitReasoning));
        context.maxQueue(maxQueue);
        // The routes listen on loopback only; clients reach them through the edge, which owns the connection rules.
        WebServer server = Main.server("127.0.0.1", 0, context, System.err);
        EdgeServer edge = EdgeServer.start(host, port, limits, server.port(), System.err, context.metrics()::httpResponse);
        context.listenerFailure(edge::failure);
        System.err.printf("tessera serve: listening on http://%s:%d (model %s loading)%n", host, edge.port(), name);
        CountDownLatch stopped = new CountDownLatch(1);
        AtomicBoolean closed = new AtomicBoolean();
        Runnable close = () -> {
            if (!closed.compareAndSet(false, true)) return;
            edge.close();
            server.stop();
            ServedModel m = context.unload();
            if (m != null) m.close();
            stopped.countDown();
        };
        GracefulShutdown.onSignals(context, edge, Math.round(shutdownGrace * 1000), close);
        Runtime.getRuntime().addShutdownHook(new Thread(close));
        try {
            ServedModel served;
            String where;
            if (args.has("tp-workers")) {
                served = ServedModel.load(model, name, engineConfig,
                        file -> TensorParallelOptions.open(args, file, ModelConfig.fromGguf(file), threads, maxBatched, maxNumSeqs));
                where = "tensor-parallel over " + args.get("tp-workers", "") + " and this process";
            } else if (args.has("expert-workers")) {
                served = ServedModel.load(model, name, engineConfig,
                        file -> ExpertParallelOptions.open(args, file, ModelConfig.fromGguf(file), threads, maxBatched, maxNumSeqs));
                where = "expert-parallel (" + args.get("expert-mode", "coherent") + ") with " + args.get("expert-workers", "");
            } else if (args.has("attention-workers")) {
                served = ServedModel.load(model, name, engineConfig,
                        file -> AttentionOffloadOptions.open(args, file, ModelConfig.fromGguf(file), name, threads, maxBatched, maxNumSeqs));
                where = "attention offloaded to " + args.get("attention-workers", "");
            } else {
                Backend backend = Devices.backend(args, threads);
                served = ServedModel.load(model, name, backend, engineConfig);
                where = backend.name();
            }
            if (!args.has("no-warmup")) {
                System.err.println("tessera serve: warming up (throwaway requests, so the first client's are compiled)");
                ServerWarmUp.Summary w = ServerWarmUp.run(served.engine(), served.tokenizer().vocabSize(), Math.min(maxNumSeqs, maxQueue));
                System.err.printf("tessera serve: warmed up in %.2f s (%d requests; JIT %.1f s)%n", w.seconds(), w.requests(), w.compileSeconds());
            }
            context.ready(served);
            System.err.printf("tessera serve: ready in %.2f s: %s (%s, context %d tokens)%n", (System.nanoTime() - t0) / 1e9,
                    name, where, served.contextLength());
        } catch (RuntimeException | Error e) {
            // A server without its model is of no use: stop it and exit 1 with the reason.
            context.loadFailed(e.getMessage());
            close.run();
            throw e;
        }
        stopped.await();
        return 0;
    }

    static KvCacheType kvCacheType(String name) {
        try {
            return KvCacheType.parse(name);
        } catch (IllegalArgumentException e) {
            throw new CliArgs.UsageException("--kv-cache-type: " + e.getMessage());
        }
    }
}
