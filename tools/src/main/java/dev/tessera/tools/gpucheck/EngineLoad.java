package dev.tessera.tools.gpucheck;

import dev.tessera.models.sample.SamplingParams;
import dev.tessera.scheduler.engine.BatchingEngine;
import dev.tessera.scheduler.engine.EngineRequest;
import dev.tessera.scheduler.engine.RequestHandle;
import dev.tessera.scheduler.engine.TokenEvent;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A closed-loop load on a {@link BatchingEngine} in this process, shaped like {@code tessera bench serve}: {@code
 * concurrency} clients each send greedy requests of random prompts (different per request, so no prefix is shared)
 * one after another until {@code requests} are done, and read every token. For the GPU check, whose host has no
 * room for the HTTP stack in its bundle; the engine is the part that batches.
 */
final class EngineLoad {
    private EngineLoad() {}

    /** Output tokens per second over the wall time of the whole load, and the number of requests that failed. */
    record Result(double outputTokensPerS, int failed) {}

    static Result run(BatchingEngine engine, int vocabSize, int concurrency, int requests, int promptTokens,
                      int genTokens, long seed) throws InterruptedException {
        AtomicInteger next = new AtomicInteger(), failed = new AtomicInteger();
        AtomicLong delivered = new AtomicLong();
        long t0 = System.nanoTime();
        try (ExecutorService clients = Executors.newFixedThreadPool(concurrency)) {
            List<Future<?>> running = new ArrayList<>();
            for (int c = 0; c < concurrency; c++) running.add(clients.submit(() -> {
                for (int r = next.getAndIncrement(); r < requests; r = next.getAndIncrement()) {
                    SplittableRandom random = new SplittableRandom(seed * 1_000_003L + r);
                    int[] prompt = new int[promptTokens];
                    prompt[0] = 1;
                    for (int i = 1; i < promptTokens; i++) prompt[i] = 3 + random.nextInt(vocabSize - 3);
                    RequestHandle h = engine.submit(new EngineRequest("load-" + seed + "-" + r, prompt, SamplingParams.greedy(), genTokens, t -> false, false));
                    try {
                        delivered.addAndGet(tokens(h).length);
                    } catch (IllegalStateException failedOrSilent) {
                        failed.incrementAndGet();
                    }
                }
                return null;
            }));
            for (Future<?> f : running) {
                try {
                    f.get();
                } catch (java.util.concurrent.ExecutionException e) {
                    throw new IllegalStateException("load client failed", e.getCause());
                }
            }
        }
        return new Result(delivered.get() / ((System.nanoTime() - t0) / 1e9), failed.get());
    }

    /** Reads h's events to the end: its token ids. Throws IllegalStateException when it failed or went silent. */
    static int[] tokens(RequestHandle h) throws InterruptedException {
        List<Integer> out = new ArrayList<>();
        while (true) {
            TokenEvent e = h.poll(120, TimeUnit.SECONDS);
            if (e == null) throw new IllegalStateException(h.request().id() + ": no event within 120 s");
            switch (e) {
                case TokenEvent.Token t -> out.add(t.token());
                case TokenEvent.Finished f -> { return out.stream().mapToInt(Integer::intValue).toArray(); }
                case TokenEvent.Failed f -> throw new IllegalStateException(h.request().id() + " failed: " + f.message());
                case TokenEvent.PromptLogprobs p -> { }
            }
        }
    }
}
