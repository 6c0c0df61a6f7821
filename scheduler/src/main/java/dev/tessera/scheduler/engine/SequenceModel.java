package dev.tessera.scheduler.engine;

import dev.tessera.models.arch.ModelConfig;

/**
 * A model that runs one sequence at a time, the shape {@link SequenceGenerator} drives: a local {@code LlamaModel}
 * ({@link LocalSequenceModel}) or a model split over tensor-parallel devices.
 */
public interface SequenceModel {
    ModelConfig config();

    /** Most prompt tokens one forward call takes; longer prompts are prefilled in chunks. */
    int maxBatchTokens();

    /** Starts a sequence with room for {@code capacity} positions. */
    Sequence begin(int capacity);

    /** One sequence's state (its KV cache); closing it frees that state. */
    interface Sequence extends AutoCloseable {
        /** Runs tokens[0..n) at positions start.., and writes the last token's logits into logitsOut unless it is null. */
        void forward(int[] tokens, int n, int start, float[] logitsOut);

        @Override
        void close();
    }
}
