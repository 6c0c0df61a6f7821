package dev.tessera.scheduler.kv;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Which pool blocks hold a known, full, computed prefix block, found by chained hash.
 *
 * <p>A cached block's identity is (parent block id, parent generation, its own token ids); the chained
 * hash only picks the bucket. Lookups walk a prompt from its first block, and block i matches only if its
 * tokens are equal and its parent is exactly the block matched for i - 1 in the same generation, so by
 * induction a hit holds exactly the prompt's prefix even when hashes collide. A block's generation goes up
 * whenever it leaves the cache, so children cached under an evicted (and maybe reused) parent can never be
 * reached again.
 *
 * <p>This class only keeps identities; {@link KvBlockPool} owns reference counts and decides eviction.
 * Not thread-safe: one scheduler thread owns the pool.
 */
final class PrefixCache {

    private static final int NONE = -1;

    private final int blockSize;
    private final BlockHashFunction hashFunction;
    /** Chained hash → first cached block in its bucket; buckets chain through {@link #nextInBucket}. */
    private final Map<Long, Integer> buckets = new HashMap<>();
    private final int[] nextInBucket;
    private final boolean[] cached;
    private final long[] hashes;
    private final int[] parentIds;
    private final int[] parentGenerations;
    private final int[] generations;
    private final int[][] tokens;
    private int numCached;

    PrefixCache(int numBlocks, int blockSize, BlockHashFunction hashFunction) {
        this.blockSize = blockSize;
        this.hashFunction = hashFunction;
        this.nextInBucket = new int[numBlocks];
        this.cached = new boolean[numBlocks];
        this.hashes = new long[numBlocks];
        this.parentIds = new int[numBlocks];
        this.parentGenerations = new int[numBlocks];
        this.generations = new int[numBlocks];
        this.tokens = new int[numBlocks][];
        Arrays.fill(nextInBucket, NONE);
    }

    long hash(long parentHash, int[] tokenIds, int from) {
        return hashFunction.hash(parentHash, tokenIds, from, blockSize);
    }

    boolean isCached(int block) {
        return cached[block];
    }

    int generation(int block) {
        return generations[block];
    }

    int numCached() {
        return numCached;
    }

    /** The cached block whose identity is (parent, tokens[from, from + blockSize)), or -1. */
    int find(long hash, int parentId, int parentGeneration, int[] tokenIds, int from) {
        Integer head = buckets.get(hash);
        for (int b = head == null ? NONE : head; b != NONE; b = nextInBucket[b]) {
            if (parentIds[b] == parentId && parentGenerations[b] == parentGeneration
                    && Arrays.equals(tokens[b], 0, blockSize, tokenIds, from, from + blockSize)) {
                return b;
            }
        }
        return NONE;
    }

    /** Records that {@code block} now holds (parent, tokens[from, from + blockSize)) under {@code hash}. */
    void insert(int block, long hash, int parentId, int parentGeneration, int[] tokenIds, int from) {
        if (cached[block]) {
            throw new IllegalStateException("prefix cache: block " + block + " is already cached");
        }
        cached[block] = true;
        hashes[block] = hash;
        parentIds[block] = parentId;
        parentGenerations[block] = parentGeneration;
        tokens[block] = Arrays.copyOfRange(tokenIds, from, from + blockSize);
        Integer head = buckets.put(hash, block);
        nextInBucket[block] = head == null ? NONE : head;
        numCached++;
    }

    /** Forgets {@code block}'s identity (eviction) and bumps its generation. */
    void remove(int block) {
        if (!cached[block]) {
            throw new IllegalStateException("prefix cache: block " + block + " is not cached");
        }
        long hash = hashes[block];
        int head = buckets.get(hash);
        if (head == block) {
            if (nextInBucket[block] == NONE) {
                buckets.remove(hash);
            } else {
                buckets.put(hash, nextInBucket[block]);
            }
        } else {
            int prev = head;
            while (nextInBucket[prev] != block) {
                prev = nextInBucket[prev];
            }
            nextInBucket[prev] = nextInBucket[block];
        }
        nextInBucket[block] = NONE;
        cached[block] = false;
        tokens[block] = null;
        generations[block]++;
        numCached--;
    }
}
