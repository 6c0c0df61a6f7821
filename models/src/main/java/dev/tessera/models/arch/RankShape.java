package dev.tessera.models.arch;

/**
 * The part of every layer one rank computes: its query heads, the KV heads they read, and its FFN columns. The whole
 * model on one device is the rank that has all of them; a tensor-parallel rank has a slice (possibly none of one half).
 */
public record RankShape(int numHeads, int numKvHeads, int hiddenDim) {
    public RankShape {
        if (numHeads < 0 || numKvHeads < 0 || hiddenDim < 0 || (numHeads == 0) != (numKvHeads == 0))
            throw new IllegalArgumentException("rank shape: " + numHeads + " heads, " + numKvHeads + " KV heads, " + hiddenDim + " FFN columns");
    }

    public static RankShape whole(ModelConfig config) {
        return new RankShape(config.numHeads(), config.numKvHeads(), config.hiddenDim());
    }

    public boolean hasAttention() { return numHeads > 0; }

    public boolean hasFeedForward() { return hiddenDim > 0; }
}
