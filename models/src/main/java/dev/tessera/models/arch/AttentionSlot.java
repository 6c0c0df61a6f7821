package dev.tessera.models.arch;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.Backend;

/**
 * Where a layer's attention runs. By default on the model's own backend over its own KV caches; with attention
 * offloading (Lamina) on memory nodes that hold the KV cache, while this graph keeps the projections, rope and FFN.
 * Either way the slot stores the rows' k and v at their positions and leaves softmax(q·Kᵀ/√d)·V in {@code out}.
 */
public interface AttentionSlot {
    void attend(int layer, Activations q, Activations k, Activations v, AttentionBatch batch,
                int numHeads, int numKvHeads, int headDim, Activations out);

    /** Whether a step through this slot may be recorded and replayed by the backend (false when the host is in the loop). */
    default boolean recordable() {
        return true;
    }

    /** Attention on the model's backend, over the caches the batch names. */
    static AttentionSlot local(Backend backend) {
        return backend::attention;
    }
}
