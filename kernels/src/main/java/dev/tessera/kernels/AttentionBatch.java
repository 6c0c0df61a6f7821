package dev.tessera.kernels;

/**
 * Which sequence and position each token row of a batch belongs to. Row t attends to positions
 * 0..positions[t] of sequence sequences[t] (causal), after its own K/V have been stored.
 */
public record AttentionBatch(int numTokens, int[] positions, KvCache[] sequences) {

    public static AttentionBatch single(KvCache cache, int startPosition, int numTokens) {
        int[] pos = new int[numTokens];
        KvCache[] seq = new KvCache[numTokens];
        for (int t = 0; t < numTokens; t++) { pos[t] = startPosition + t; seq[t] = cache; }
        return new AttentionBatch(numTokens, pos, seq);
    }
}
