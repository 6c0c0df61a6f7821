package dev.tessera.scheduler.kv;

/**
 * The chained key of one full KV block: a hash of the parent block's key and this block's token ids,
 * so equal keys mean equal prefixes up to hash collisions. {@link PrefixCache} never trusts the key
 * alone; it also compares tokens and the parent block, so a colliding function only costs hits.
 * Tests plug in a colliding function here; production uses {@link XxHashBlockHash}.
 */
@FunctionalInterface
public interface BlockHashFunction {

    /** Key of the first block of every sequence's chain. */
    long ROOT_HASH = 0L;

    /** Hashes {@code parentHash} followed by {@code tokens[from, from + count)}. */
    long hash(long parentHash, int[] tokens, int from, int count);
}
