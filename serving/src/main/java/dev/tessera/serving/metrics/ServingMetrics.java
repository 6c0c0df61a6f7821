package dev.tessera.serving.metrics;

import dev.tessera.scheduler.engine.Engine;
import dev.tessera.scheduler.engine.EngineStats;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.config.MeterFilter;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The server's metrics, vLLM's names with a {@code tessera_} prefix, in Prometheus text format for {@code /metrics}.
 * Micrometer adds the unit and {@code _total} suffixes: the timer {@code tessera.time.to.first.token} is exported as
 * the histogram {@code tessera_time_to_first_token_seconds}, the counter {@code tessera.requests} as
 * {@code tessera_requests_total}.
 */
public final class ServingMetrics {
    public static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

    // Bucket bounds in seconds, as vLLM's.
    private static final double[] TTFT_BUCKETS = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
            1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
    private static final double[] TPOT_BUCKETS = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
            0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0};
    private static final double[] LATENCY_BUCKETS = {0.01, 0.025, 0.05, 0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0,
            10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0};

    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final Counter promptTokens;
    private final Counter generationTokens;
    private final Timer timeToFirstToken;
    private final Timer timePerOutputToken;
    private final Timer e2eLatency;
    private final Timer queueTime;
    private DistributionSummary iterationTokens;
    /** The bound engine's prefix-cache queries, hits and preemptions when it was bound (after the warm-up). */
    private volatile long[] baseline = new long[3];

    /**
     * @param engine the engine once the model is loaded, else null (the gauges then read 0); held strongly; a gauge
     *               holds its object weakly by default and reads NaN once it is collected
     */
    public ServingMetrics(Supplier<Engine> engine) {
        // promtool's lint: no abbreviated units in names (process_cpu_time_ns_total), and "_count" only on
        // histograms and summaries (system_cpu_count). process_cpu_usage covers the first.
        registry.config().meterFilter(MeterFilter.deny(id -> id.getName().equals("process.cpu.time")));
        registry.config().meterFilter(new MeterFilter() {
            @Override
            public Meter.Id map(Meter.Id id) {
                return id.getName().equals("system.cpu.count") ? id.withName("system.cpu.logical.processors") : id;
            }
        });
        promptTokens = Counter.builder("tessera.prompt.tokens").description("Prompt tokens processed").register(registry);
        generationTokens = Counter.builder("tessera.generation.tokens").description("Tokens generated").register(registry);
        timeToFirstToken = timer("tessera.time.to.first.token", "Time from request arrival to the first generated token", TTFT_BUCKETS);
        timePerOutputToken = timer("tessera.time.per.output.token", "Mean time between generated tokens of a request", TPOT_BUCKETS);
        e2eLatency = timer("tessera.e2e.request.latency", "Time from request arrival to its last token", LATENCY_BUCKETS);
        queueTime = timer("tessera.request.queue.time", "Time a request waited in the engine queue", LATENCY_BUCKETS);
        Gauge.builder("tessera.num.requests.running", engine, e -> e.get() == null ? 0 : e.get().numRunning())
                .description("Requests the engine is computing").strongReference(true).register(registry);
        Gauge.builder("tessera.num.requests.waiting", engine, e -> e.get() == null ? 0 : e.get().numWaiting())
                .description("Requests waiting in the engine queue").strongReference(true).register(registry);
        engineStats(engine);
        new JvmMemoryMetrics().bindTo(registry);
        new JvmGcMetrics().bindTo(registry);
        new JvmThreadMetrics().bindTo(registry);
        new ProcessorMetrics().bindTo(registry);
        new UptimeMetrics().bindTo(registry);
    }

    /** KV usage, prefix cache, preemptions and tokens per iteration, read from the engine's live stats (vLLM's names). */
    private void engineStats(Supplier<Engine> engine) {
        Supplier<EngineStats> stats = () -> engine.get() == null ? null : engine.get().stats();
        Gauge.builder("tessera.kv.cache.usage.perc", stats, s -> s.get() == null ? 0 : s.get().kvCacheUsage())
                .description("Fraction of KV-cache blocks held by requests (1 = full)").strongReference(true).register(registry);
        Gauge.builder("tessera.kv.cache.blocks", stats, s -> s.get() == null ? 0 : s.get().kvBlocksTotal())
                .description("KV-cache blocks in the pool").strongReference(true).register(registry);
        FunctionCounter.builder("tessera.prefix.cache.queries", stats, s -> s.get() == null ? 0 : s.get().prefixQueryTokens() - baseline[0])
                .description("Prompt tokens looked up in the prefix cache").register(registry);
        FunctionCounter.builder("tessera.prefix.cache.hits", stats, s -> s.get() == null ? 0 : s.get().prefixHitTokens() - baseline[1])
                .description("Prompt tokens found in the prefix cache (their prefill skipped)").register(registry);
        FunctionCounter.builder("tessera.num.preemptions", stats, s -> s.get() == null ? 0 : s.get().preemptions() - baseline[2])
                .description("Requests preempted for lack of KV blocks (recomputed later)").register(registry);
        iterationTokens = DistributionSummary.builder("tessera.iteration.tokens").description("Tokens per engine step")
                .serviceLevelObjectives(1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192).register(registry);
    }

    /**
     * Subscribes the tokens-per-iteration histogram to an engine (call once it is loaded and warmed up): the engine's
     * counters count from here, so the server's warm-up requests are not in them.
     */
    public void bind(Engine engine) {
        EngineStats s = engine.stats();
        baseline = new long[]{s.prefixQueryTokens(), s.prefixHitTokens(), s.preemptions()};
        engine.stats().onIteration(n -> iterationTokens.record(n));
        engine.runnerGauges().forEach((name, g) -> Gauge.builder(name, g.value(), java.util.function.DoubleSupplier::getAsDouble)
                .description(g.description()).strongReference(true).register(registry));
    }

    private Timer timer(String name, String description, double[] bucketsSeconds) {
        Duration[] slos = new Duration[bucketsSeconds.length];
        for (int i = 0; i < slos.length; i++) slos[i] = Duration.ofNanos(Math.round(bucketsSeconds[i] * 1e9));
        return Timer.builder(name).description(description).serviceLevelObjectives(slos).register(registry);
    }

    /** One HTTP response, by status code. */
    public void httpResponse(int status) {
        Counter.builder("tessera.requests").description("HTTP requests answered, by status code")
                .tag("status", Integer.toString(status)).register(registry).increment();
    }

    /**
     * One finished engine request.
     *
     * @param finishedReason "stop", "length" or "abort"; only stop and length count as successes
     * @param ttftNanos      -1 when no token was generated
     * @param tpotNanos      -1 with fewer than two tokens
     */
    public void requestFinished(String finishedReason, int numPromptTokens, int numGeneratedTokens, long queueNanos,
                                long ttftNanos, long tpotNanos, long e2eNanos) {
        if (!finishedReason.equals("abort")) {
            Counter.builder("tessera.request.success").description("Requests finished, by finish reason")
                    .tag("finished_reason", finishedReason).register(registry).increment();
        }
        promptTokens.increment(numPromptTokens);
        generationTokens.increment(numGeneratedTokens);
        if (queueNanos >= 0) queueTime.record(queueNanos, TimeUnit.NANOSECONDS);
        if (ttftNanos >= 0) timeToFirstToken.record(ttftNanos, TimeUnit.NANOSECONDS);
        if (tpotNanos >= 0) timePerOutputToken.record(tpotNanos, TimeUnit.NANOSECONDS);
        e2eLatency.record(e2eNanos, TimeUnit.NANOSECONDS);
    }

    /** The Prometheus text exposition (format 0.0.4). */
    public String scrape() {
        return registry.scrape(CONTENT_TYPE);
    }
}
