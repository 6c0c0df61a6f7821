package dev.tessera.scheduler.kv;

/**
 * The cached full blocks that start a prompt, already acquired for the caller (reference counted), and
 * the chained hash of the last one ({@link BlockHashFunction#ROOT_HASH} when nothing matched), from which
 * the caller continues the chain for the blocks it computes itself.
 */
public record PrefixMatch(int[] blockIds, long lastHash) {

    public int numBlocks() {
        return blockIds.length;
    }
}
