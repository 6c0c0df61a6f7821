package dev.tessera.scheduler.engine;

import java.util.Arrays;
import java.util.function.IntPredicate;

/**
 * Runs one request on an engine and waits for it, for command-line tools and tests: {@code generate}, {@code bench}
 * and the GPU check drive the same batching engine as the server, one request at a time.
 */
public final class SingleRequest {
    /**
     * @param finishReason  {@code stop} or {@code length} (or {@code cancelled})
     * @param prefillNanos  from the start of prefill to the first token
     * @param decodeNanos   from the first token to the last
     */
    public record Result(int[] tokens, int numTokens, String finishReason, int numPromptTokens, long prefillNanos, long decodeNanos) {}

    private SingleRequest() {}

    /**
     * Submits the request and consumes its events; {@code sink} sees each token as it comes and may stop generation
     * by returning false. A failed request throws with the engine's message.
     */
    public static Result run(Engine engine, EngineRequest request, IntPredicate sink) throws InterruptedException {
        RequestHandle h = engine.submit(request);
        int[] tokens = new int[Math.max(16, request.maxTokens())];
        int n = 0;
        boolean stopped = false;
        try {
            while (true) {
                TokenEvent e = h.take();
                switch (e) {
                    case TokenEvent.Token t -> {
                        if (stopped) continue;
                        if (n == tokens.length) tokens = Arrays.copyOf(tokens, n * 2);
                        tokens[n++] = t.token();
                        if (!sink.test(t.token())) { stopped = true; h.cancel(); }
                    }
                    case TokenEvent.Finished f -> {
                        String reason = stopped ? "stop" : f.reason().name().toLowerCase(java.util.Locale.ROOT);
                        return new Result(Arrays.copyOf(tokens, n), n, reason, f.numPromptTokens(), f.prefillNanos(), f.decodeNanos());
                    }
                    case TokenEvent.Failed f -> throw new IllegalStateException(f.message());
                    case TokenEvent.PromptLogprobs p -> { }
                }
            }
        } catch (InterruptedException e) {
            h.cancel();
            throw e;
        }
    }
}
