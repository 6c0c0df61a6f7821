package dev.tessera.scheduler.engine;

import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.sample.Sampler;

import java.util.function.IntPredicate;

/**
 * Runs one sequence to completion: chunked prefill of the prompt, then one decode step per token until a stop
 * token, the token limit or the context end. Speaks token ids only.
 */
public final class SequenceGenerator {
    /** Receives each generated token as soon as it is sampled; returning false stops generation. */
    @FunctionalInterface
    public interface TokenSink {
        boolean accept(int token);
    }

    /** @param finishReason "stop" (stop token or sink), or "length" (token limit or context end) */
    public record Result(int[] tokens, int numTokens, String finishReason, int numPromptTokens,
                         long prefillNanos, long decodeNanos) {}

    private final SequenceModel model;

    public SequenceGenerator(SequenceModel model) {
        this.model = model;
    }

    public SequenceGenerator(LlamaModel model) {
        this(new LocalSequenceModel(model));
    }

    public Result generate(int[] prompt, Sampler sampler, int maxTokens, IntPredicate isStop, TokenSink sink) {
        if (prompt.length == 0) throw new IllegalArgumentException("prompt has no tokens");
        int context = model.config().contextLength();
        if (prompt.length >= context) throw new IllegalArgumentException("prompt of " + prompt.length + " tokens does not fit the context of " + context);
        int limit = Math.min(maxTokens, context - prompt.length);
        int[] history = new int[prompt.length + limit];
        System.arraycopy(prompt, 0, history, 0, prompt.length);
        float[] logits = new float[model.config().vocabSize()];
        int[] one = new int[1];
        try (SequenceModel.Sequence sequence = model.begin(prompt.length + limit)) {
            long t0 = System.nanoTime();
            int chunk = model.maxBatchTokens();
            for (int start = 0; start < prompt.length; start += chunk) {
                int n = Math.min(chunk, prompt.length - start);
                sequence.forward(java.util.Arrays.copyOfRange(prompt, start, start + n), n, start, start + n == prompt.length ? logits : null);
            }
            long t1 = System.nanoTime();
            int length = prompt.length, generated = 0;
            String finish = "length";
            while (generated < limit) {
                int token = sampler.sample(logits, history, length);
                history[length++] = token;
                generated++;
                if (isStop.test(token)) { finish = "stop"; generated--; length--; break; }
                if (!sink.accept(token)) { finish = "stop"; break; }
                if (generated == limit) break;
                one[0] = token;
                sequence.forward(one, 1, length - 1, logits);
            }
            long t2 = System.nanoTime();
            int[] out = java.util.Arrays.copyOfRange(history, prompt.length, prompt.length + generated);
            return new Result(out, generated, finish, prompt.length, t1 - t0, t2 - t1);
        }
    }
}
