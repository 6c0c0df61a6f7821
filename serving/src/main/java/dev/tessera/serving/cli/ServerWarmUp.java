package dev.tessera.serving.cli;

import dev.tessera.models.sample.SamplingParams;
import dev.tessera.scheduler.engine.Engine;
import dev.tessera.scheduler.engine.EngineRequest;
import dev.tessera.scheduler.engine.RequestHandle;
import dev.tessera.scheduler.engine.TokenEvent;

import java.lang.management.CompilationMXBean;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Runs throwaway requests through a freshly loaded engine before the server reports ready, as llama-server's empty
 * warm-up run does. Until the JIT has compiled the kernels a vector loop runs interpreted: on a 2-core Zen 4 host the
 * first request to a 1B Q4_K_M server (160 prompt tokens, 16 sampled) took 5.9 s and the ones after it 1.35 s; after
 * this warm-up (7.6 s, 7.1 s of it compiling) the first took 1.6 s.
 * <p>
 * One round covers the paths a client reaches: a greedy request whose prompt is long enough for the many-token matmul,
 * then up to eight sampled ones at once with different lengths, so the batch shrinks step by step through the batched
 * dots to one token. A second round compiled almost nothing (21 ms of 1.6 s), so there is none.
 */
final class ServerWarmUp {
    /** Above the CPU matmul's per-row-dot limit (16 tokens), so prefill's matmul is compiled too. */
    static final int LONG_PROMPT = 48;
    static final int BATCH = 8;

    /** What the warm-up did, for the log line. */
    record Summary(int requests, double seconds, double compileSeconds) {}

    private ServerWarmUp() {}

    /** @param maxBatch requests the engine takes at once (max-num-seqs, and no more than may wait) */
    static Summary run(Engine engine, int vocabSize, int maxBatch) throws InterruptedException {
        CompilationMXBean jit = ManagementFactory.getCompilationMXBean();
        boolean timed = jit != null && jit.isCompilationTimeMonitoringSupported();
        long compiled = timed ? jit.getTotalCompilationTime() : 0, start = System.nanoTime();
        SplittableRandom random = new SplittableRandom(20261207);
        int limit = engine.maxSequenceTokens(), batch = Math.min(BATCH, maxBatch);
        runAll(engine, List.of(request("warmup-greedy", prompt(random, vocabSize, Math.min(LONG_PROMPT, limit - 4)), SamplingParams.greedy(), 4)));
        List<EngineRequest> sampled = new ArrayList<>();
        SamplingParams params = SamplingParams.defaults().withTemperature(0.8f).withTopP(0.95f).withTopK(40);
        for (int i = 0; i < batch; i++) sampled.add(request("warmup-" + i, prompt(random, vocabSize, Math.min(8, limit - 2 - i)), params, 2 + i));
        runAll(engine, sampled);
        awaitIdle(engine);
        return new Summary(1 + batch, (System.nanoTime() - start) / 1e9, timed ? (jit.getTotalCompilationTime() - compiled) / 1e3 : 0);
    }

    private static EngineRequest request(String id, int[] prompt, SamplingParams params, int maxTokens) {
        return new EngineRequest(id, prompt, params, maxTokens, t -> false, false);
    }

    /** Random ids above the first 260 (control and byte tokens in SentencePiece vocabularies), distinct per request. */
    private static int[] prompt(SplittableRandom random, int vocabSize, int length) {
        int[] ids = new int[Math.max(1, length)];
        int low = Math.min(260, vocabSize - 1);
        for (int i = 0; i < ids.length; i++) ids[i] = low + random.nextInt(vocabSize - low);
        return ids;
    }

    /**
     * Waits until the engine's step that finished the last request has also retired it: a client sees Finished before the
     * step ends, and the running count (and the KV blocks it frees) would otherwise still hold a warm-up sequence when
     * the server reports ready and takes its metrics' baseline.
     */
    private static void awaitIdle(Engine engine) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while ((engine.numRunning() > 0 || engine.numWaiting() > 0) && System.nanoTime() < deadline) Thread.sleep(1);
    }

    /** Submits the requests together and waits for all; a failure is the load's failure (the model cannot serve). */
    private static void runAll(Engine engine, List<EngineRequest> requests) throws InterruptedException {
        List<RequestHandle> handles = new ArrayList<>();
        for (EngineRequest r : requests) handles.add(engine.submit(r));
        for (RequestHandle h : handles)
            while (true) {
                TokenEvent e = h.take();
                if (e instanceof TokenEvent.Finished) break;
                if (e instanceof TokenEvent.Failed f) throw new IllegalStateException("warm-up request failed: " + f.message());
            }
    }
}
