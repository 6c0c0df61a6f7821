package dev.tessera.scheduler.kv;

import java.util.Arrays;
import java.util.BitSet;
import java.util.Iterator;
import java.util.LinkedHashSet;

/**
 * A fixed number of KV blocks of {@code blockSize} token slots each, handed out by id, reference counted,
 * with prefix caching. Host bookkeeping only: the K/V memory itself lives with the worker, addressed by
 * block id.
 *
 * <p>Every block is in exactly one state:
 * <ul>
 *   <li><b>used</b>: reference count &gt; 0 (one per sequence holding it; shared prefixes and n &gt; 1
 *       raise it);</li>
 *   <li><b>cached idle</b>: count 0 but it holds a full block known to {@link PrefixCache}; a later prompt
 *       may still reuse it, and {@link #allocate} evicts it, least recently released first, only when no
 *       empty block is left;</li>
 *   <li><b>empty</b>: count 0, nothing cached.</li>
 * </ul>
 * {@code numEmpty + numUsed + numCachedIdle == numTotal}; {@link #numFree()} counts both empty and cached
 * idle blocks, since both can be allocated.
 *
 * <p>Deterministic ids: {@link #allocate} takes the lowest-numbered empty blocks first, in ascending order,
 * then evicts cached idle blocks in LRU order. {@link #free} releases a sequence's blocks last to first, so
 * of one sequence's blocks its tail is evicted before the prefix that other prompts are likelier to share.
 *
 * <p>Not thread-safe: the one scheduler thread owns it.
 */
public final class KvBlockPool {

    public static final int DEFAULT_BLOCK_SIZE = 16;

    private static final int[] NO_BLOCKS = new int[0];

    private final int numBlocks;
    private final int blockSize;
    private final int[] refCounts;
    /** Blocks with count 0 and no cached content. */
    private final BitSet empty;
    /** Blocks with count 0 that hold cached content; iteration order is least recently released first. */
    private final LinkedHashSet<Integer> cachedIdle = new LinkedHashSet<>();
    private final PrefixCache prefixCache;
    private int numUsed;
    private long numQueriedTokens;
    private long numHitTokens;
    private long numEvictions;

    public KvBlockPool(int numBlocks) {
        this(numBlocks, DEFAULT_BLOCK_SIZE);
    }

    public KvBlockPool(int numBlocks, int blockSize) {
        this(numBlocks, blockSize, XxHashBlockHash.INSTANCE);
    }

    /** {@code hashFunction} is replaceable so tests can force collisions. */
    public KvBlockPool(int numBlocks, int blockSize, BlockHashFunction hashFunction) {
        if (numBlocks < 1 || blockSize < 1) {
            throw new IllegalArgumentException("KV block pool: expected numBlocks >= 1 and blockSize >= 1, found "
                    + numBlocks + " and " + blockSize);
        }
        this.numBlocks = numBlocks;
        this.blockSize = blockSize;
        this.refCounts = new int[numBlocks];
        this.empty = new BitSet(numBlocks);
        this.empty.set(0, numBlocks);
        this.prefixCache = new PrefixCache(numBlocks, blockSize, hashFunction);
    }

    /** How many blocks of {@code bytesPerBlock} fit in {@code kvCacheMemoryBytes} ({@code --kv-cache-memory}). */
    public static int numBlocksFor(long kvCacheMemoryBytes, long bytesPerBlock) {
        if (kvCacheMemoryBytes < 0 || bytesPerBlock < 1) {
            throw new IllegalArgumentException("KV block pool: expected memory >= 0 and bytesPerBlock >= 1, found "
                    + kvCacheMemoryBytes + " and " + bytesPerBlock);
        }
        return (int) Math.min(Integer.MAX_VALUE, kvCacheMemoryBytes / bytesPerBlock);
    }

    public int blockSize() {
        return blockSize;
    }

    public int numTotal() {
        return numBlocks;
    }

    /** Blocks {@link #allocate} can hand out now: empty plus cached idle. */
    public int numFree() {
        return numBlocks - numUsed;
    }

    public int numUsed() {
        return numUsed;
    }

    public int numEmpty() {
        return empty.cardinality();
    }

    public int numCachedIdle() {
        return cachedIdle.size();
    }

    /** Fraction of blocks in use by sequences, 0..1: the KV-cache usage gauge. */
    public double usage() {
        return (double) numUsed / numBlocks;
    }

    public int refCount(int block) {
        return refCounts[checkId(block)];
    }

    /** Prompt tokens offered to {@link #lookup} so far (prefix-cache queries, in tokens as vLLM counts). */
    public long numQueriedTokens() {
        return numQueriedTokens;
    }

    /** Tokens {@link #lookup} found cached so far (prefix-cache hits, in tokens). */
    public long numHitTokens() {
        return numHitTokens;
    }

    public long numEvictions() {
        return numEvictions;
    }

    public boolean canAllocate(int n) {
        return n <= numFree();
    }

    /**
     * Exactly {@code n} blocks, each with count 1, or an empty array when fewer than {@code n} can be had even
     * after evicting every cached idle block; then nothing changes, and the scheduler preempts someone.
     */
    public int[] allocate(int n) {
        if (n < 0) {
            throw new IllegalArgumentException("KV block pool: expected n >= 0 blocks, found " + n);
        }
        if (n == 0 || n > numFree()) {
            return NO_BLOCKS;
        }
        int[] blocks = new int[n];
        for (int i = 0; i < n; i++) {
            int b = empty.nextSetBit(0);
            if (b >= 0) {
                empty.clear(b);
            } else {
                Iterator<Integer> lru = cachedIdle.iterator();
                b = lru.next();
                lru.remove();
                prefixCache.remove(b);
                numEvictions++;
            }
            refCounts[b] = 1;
            blocks[i] = b;
        }
        numUsed += n;
        return blocks;
    }

    /** One more holder for each block (n > 1 children, a fork); every block must be in use. */
    public void share(int[] blocks) {
        for (int b : blocks) {
            if (refCounts[checkId(b)] <= 0) {
                throw new IllegalStateException("KV block pool: share of block " + b + " that is not in use");
            }
        }
        for (int b : blocks) {
            refCounts[b]++;
        }
    }

    /**
     * One holder fewer for each block, released last to first; a block whose count reaches 0 becomes empty,
     * or cached idle (most recently released) when it holds a cached prefix block.
     */
    public void free(int[] blocks) {
        for (int i = blocks.length - 1; i >= 0; i--) {
            int b = blocks[i];
            if (refCounts[checkId(b)] <= 0) {
                throw new IllegalStateException("KV block pool: free of block " + b + " that is not in use");
            }
            if (--refCounts[b] == 0) {
                numUsed--;
                if (prefixCache.isCached(b)) {
                    cachedIdle.add(b);
                } else {
                    empty.set(b);
                }
            }
        }
    }

    /**
     * The longest run of cached full blocks equal to the start of {@code tokens[0, numTokens)}, acquired for
     * the caller (each count goes up by one, and idle ones leave the eviction order), so prefill can skip
     * them. Pass {@code numTokens = promptLength - 1} so at least one prompt token is computed for logits.
     */
    public PrefixMatch lookup(int[] tokens, int numTokens) {
        if (numTokens < 0 || numTokens > tokens.length) {
            throw new IllegalArgumentException("KV prefix lookup: expected 0 <= numTokens <= " + tokens.length
                    + ", found " + numTokens);
        }
        int maxBlocks = numTokens / blockSize;
        int[] found = new int[maxBlocks];
        int numFound = 0;
        long hash = BlockHashFunction.ROOT_HASH;
        int parent = -1;
        int parentGeneration = 0;
        while (numFound < maxBlocks) {
            int from = numFound * blockSize;
            long h = prefixCache.hash(hash, tokens, from);
            int b = prefixCache.find(h, parent, parentGeneration, tokens, from);
            if (b < 0) {
                break;
            }
            found[numFound++] = b;
            hash = h;
            parent = b;
            parentGeneration = prefixCache.generation(b);
        }
        for (int i = 0; i < numFound; i++) {
            int b = found[i];
            if (refCounts[b]++ == 0) {
                cachedIdle.remove(b);
                numUsed++;
            }
        }
        numQueriedTokens += numTokens;
        numHitTokens += (long) numFound * blockSize;
        return new PrefixMatch(Arrays.copyOf(found, numFound), hash);
    }

    public PrefixMatch lookup(int[] tokens) {
        return lookup(tokens, tokens.length);
    }

    /** Chained hash of the full block {@code tokens[from, from + blockSize)} after a block keyed {@code parentHash}. */
    public long hashBlock(long parentHash, int[] tokens, int from) {
        if (from < 0 || from + blockSize > tokens.length) {
            throw new IllegalArgumentException("KV block hash: block [" + from + ", " + (from + blockSize)
                    + ") is not full in " + tokens.length + " tokens");
        }
        return prefixCache.hash(parentHash, tokens, from);
    }

    /** Generation of {@code block}'s cached identity; parents are named by (id, generation). */
    public int generation(int block) {
        return prefixCache.generation(checkId(block));
    }

    public boolean isCached(int block) {
        return prefixCache.isCached(checkId(block));
    }

    /**
     * Publishes the computed full block {@code block}, holding {@code tokens[from, from + blockSize)} after
     * parent (parentId, parentGeneration) (-1 and 0 for a first block), for later prompts to reuse. Returns
     * the block that now stands for this content: {@code block} itself, or an already cached block with the
     * same identity (two sequences computed the same prefix at once), in which case {@code block} stays
     * uncached and is emptied when its holders free it.
     */
    public int cache(int block, long hash, int parentId, int parentGeneration, int[] tokens, int from) {
        if (refCounts[checkId(block)] <= 0) {
            throw new IllegalStateException("KV prefix cache: block " + block + " is not in use");
        }
        if (prefixCache.isCached(block)) {
            throw new IllegalStateException("KV prefix cache: block " + block + " is already cached");
        }
        int existing = prefixCache.find(hash, parentId, parentGeneration, tokens, from);
        if (existing >= 0) {
            return existing;
        }
        prefixCache.insert(block, hash, parentId, parentGeneration, tokens, from);
        return block;
    }

    /**
     * Forgets every cached prefix: idle cached blocks become empty, and blocks in use lose their cached identity.
     * For when the K/V behind the ids is gone (a worker that held part of every block restarted).
     */
    public void dropCachedPrefixes() {
        for (int b = 0; b < numBlocks; b++) {
            if (!prefixCache.isCached(b)) continue;
            prefixCache.remove(b);
            if (cachedIdle.remove(b)) empty.set(b);
        }
    }

    /** Throws {@link IllegalStateException} when the block states disagree; tests call it after every step. */
    void checkInvariants() {
        int counted = 0;
        for (int b = 0; b < numBlocks; b++) {
            boolean isEmpty = empty.get(b);
            boolean isIdle = cachedIdle.contains(b);
            boolean isUsed = refCounts[b] > 0;
            if (refCounts[b] < 0 || (isEmpty ? 1 : 0) + (isIdle ? 1 : 0) + (isUsed ? 1 : 0) != 1) {
                throw new IllegalStateException("KV block pool: block " + b + " has count " + refCounts[b]
                        + ", empty " + isEmpty + ", cached idle " + isIdle);
            }
            if (isEmpty && prefixCache.isCached(b) || isIdle && !prefixCache.isCached(b)) {
                throw new IllegalStateException("KV block pool: block " + b + " cached " + prefixCache.isCached(b)
                        + " but empty " + isEmpty + ", cached idle " + isIdle);
            }
            counted += isUsed ? 1 : 0;
        }
        if (counted != numUsed || numEmpty() + numUsed + numCachedIdle() != numBlocks) {
            throw new IllegalStateException("KV block pool: expected " + numBlocks + " = empty " + numEmpty()
                    + " + used " + numUsed + " (counted " + counted + ") + cached idle " + numCachedIdle());
        }
    }

    private int checkId(int block) {
        if (block < 0 || block >= numBlocks) {
            throw new IllegalStateException("KV block pool: block id " + block + " outside [0, " + numBlocks + ")");
        }
        return block;
    }
}
