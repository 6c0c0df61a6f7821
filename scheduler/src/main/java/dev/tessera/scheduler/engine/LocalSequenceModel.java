package dev.tessera.scheduler.engine;

import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.KvCache;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.arch.ModelConfig;

import java.util.Arrays;

/** A {@link LlamaModel} on one backend as a {@link SequenceModel}: each sequence owns a KV cache. */
public record LocalSequenceModel(LlamaModel model) implements SequenceModel {
    private static final int[] NO_ROWS = {};

    @Override
    public ModelConfig config() {
        return model.config();
    }

    @Override
    public int maxBatchTokens() {
        return model.maxBatchTokens();
    }

    @Override
    public Sequence begin(int capacity) {
        KvCache cache = model.newKvCache(capacity);
        return new Sequence() {
            @Override
            public void forward(int[] tokens, int n, int start, float[] logitsOut) {
                int[] rows = logitsOut == null ? NO_ROWS : new int[] {n - 1};
                int[] batch = tokens.length == n ? tokens : Arrays.copyOf(tokens, n);
                model.forward(batch, AttentionBatch.single(cache, start, n), rows, logitsOut);
            }

            @Override
            public void close() {
                cache.close();
            }
        };
    }
}
