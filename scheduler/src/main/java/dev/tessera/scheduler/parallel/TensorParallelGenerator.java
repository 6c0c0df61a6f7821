package dev.tessera.scheduler.parallel;

import dev.tessera.models.sample.Sampler;
import dev.tessera.scheduler.engine.SequenceGenerator;

import java.util.Arrays;
import java.util.function.IntPredicate;

/**
 * SequenceGenerator's loop over a {@link TensorParallelModel}: chunked prefill, then one decode step per token.
 * A failed step (a worker gone) ends the sequence with the model's TensorParallelException; the model reconnects
 * on the next call.
 */
public final class TensorParallelGenerator {
    private final TensorParallelModel model;

    public TensorParallelGenerator(TensorParallelModel model) {
        this.model = model;
    }

    public SequenceGenerator.Result generate(int[] prompt, Sampler sampler, int maxTokens, IntPredicate isStop,
                                             SequenceGenerator.TokenSink sink) {
        if (prompt.length == 0) throw new IllegalArgumentException("prompt has no tokens");
        int context = model.config().contextLength();
        if (prompt.length >= context) throw new IllegalArgumentException("prompt of " + prompt.length + " tokens does not fit the context of " + context);
        int limit = Math.min(maxTokens, context - prompt.length);
        int[] history = Arrays.copyOf(prompt, prompt.length + limit);
        float[] logits = new float[model.config().vocabSize()];
        int[] one = new int[1];
        model.beginSequence(prompt.length + limit);
        long t0 = System.nanoTime();
        int chunk = model.maxBatchTokens();
        for (int start = 0; start < prompt.length; start += chunk) {
            int n = Math.min(chunk, prompt.length - start);
            model.forward(Arrays.copyOfRange(prompt, start, start + n), n, start, start + n == prompt.length ? logits : null);
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
            model.forward(one, 1, length - 1, logits);
        }
        long t2 = System.nanoTime();
        model.endSequence();
        return new SequenceGenerator.Result(Arrays.copyOfRange(history, prompt.length, prompt.length + generated),
                generated, finish, prompt.length, t1 - t0, t2 - t1);
    }
}
