package dev.tessera.scheduler.kv;

import java.util.Arrays;

/**
 * One sequence's KV blocks, in position order: token position p lives in block {@code blockId(p / blockSize)}
 * at offset {@code p % blockSize}. The table grows as the sequence does, allocating a block from the pool
 * only when the last one is full, and gives every block back at finish, cancel or preemption.
 *
 * <p>It also carries the sequence's prefix-cache chain: how many leading full blocks are published, and the
 * hash and (id, generation) of the last one, so {@link #cacheFullBlocks} hashes each block once.
 *
 * <p>Not thread-safe: the one scheduler thread owns it.
 */
public final class BlockTable {

    private final KvBlockPool pool;
    private final int blockSize;
    private int[] blockIds = new int[4];
    private int numBlocks;
    /** Token slots reserved, {@code <= numBlocks * blockSize}. */
    private int numTokens;
    /** Leading full blocks already in the prefix cache (published by this table or found by lookup). */
    private int numCachedBlocks;
    private long lastHash = BlockHashFunction.ROOT_HASH;
    private int lastCachedId = -1;
    private int lastCachedGeneration;

    public BlockTable(KvBlockPool pool) {
        this.pool = pool;
        this.blockSize = pool.blockSize();
    }

    public int numBlocks() {
        return numBlocks;
    }

    /** Token slots reserved so far. */
    public int numTokens() {
        return numTokens;
    }

    public int numCachedBlocks() {
        return numCachedBlocks;
    }

    public int blockId(int index) {
        if (index < 0 || index >= numBlocks) {
            throw new IndexOutOfBoundsException("block table: block index " + index + " outside [0, " + numBlocks + ")");
        }
        return blockIds[index];
    }

    /** A copy of the block ids in position order. */
    public int[] blockIds() {
        return Arrays.copyOf(blockIds, numBlocks);
    }

    /** Block holding token {@code position}. */
    public int blockOf(int position) {
        checkPosition(position);
        return blockIds[position / blockSize];
    }

    /** Offset of token {@code position} inside {@link #blockOf}. */
    public int offsetOf(int position) {
        checkPosition(position);
        return position % blockSize;
    }

    /** Pool-wide slot of token {@code position}: {@code blockOf * blockSize + offsetOf}. */
    public int slotOf(int position) {
        return blockOf(position) * blockSize + offsetOf(position);
    }

    /**
     * Starts an empty table with the longest cached prefix of {@code tokens[0, numTokens)} and returns the
     * number of tokens it covers (a multiple of the block size), which prefill may skip.
     */
    public int adoptCachedPrefix(int[] tokens, int numTokens) {
        if (this.numBlocks != 0) {
            throw new IllegalStateException("block table: cached prefix adopted into a table with "
                    + this.numBlocks + " blocks");
        }
        PrefixMatch match = pool.lookup(tokens, numTokens);
        int[] found = match.blockIds();
        ensureCapacity(found.length);
        System.arraycopy(found, 0, blockIds, 0, found.length);
        this.numBlocks = found.length;
        this.numTokens = found.length * blockSize;
        this.numCachedBlocks = found.length;
        if (found.length > 0) {
            lastHash = match.lastHash();
            lastCachedId = found[found.length - 1];
            lastCachedGeneration = pool.generation(lastCachedId);
        }
        return this.numTokens;
    }

    /**
     * Reserves slots for {@code numNewTokens} more tokens, allocating blocks when the last one fills up.
     * All or nothing: returns false and changes nothing when the pool has no room.
     */
    public boolean append(int numNewTokens) {
        if (numNewTokens < 0) {
            throw new IllegalArgumentException("block table: expected numNewTokens >= 0, found " + numNewTokens);
        }
        int needed = numBlocksFor(numTokens + numNewTokens) - numBlocks;
        if (needed > 0) {
            int[] fresh = pool.allocate(needed);
            if (fresh.length != needed) {
                return false;
            }
            ensureCapacity(numBlocks + needed);
            System.arraycopy(fresh, 0, blockIds, numBlocks, needed);
            numBlocks += needed;
        }
        numTokens += numNewTokens;
        return true;
    }

    /** Blocks {@link #append} would allocate for {@code numNewTokens} more tokens. */
    public int numBlocksNeeded(int numNewTokens) {
        return Math.max(0, numBlocksFor(numTokens + numNewTokens) - numBlocks);
    }

    /**
     * Publishes every full block whose tokens are computed ({@code tokens[0, numComputedTokens)}, the
     * sequence so far) to the prefix cache, continuing the chain from the last published block.
     */
    public void cacheFullBlocks(int[] tokens, int numComputedTokens) {
        if (numComputedTokens > numTokens || numComputedTokens > tokens.length) {
            throw new IllegalStateException("block table: " + numComputedTokens + " computed tokens but "
                    + numTokens + " slots and " + tokens.length + " token ids");
        }
        int numFull = numComputedTokens / blockSize;
        for (int i = numCachedBlocks; i < numFull; i++) {
            int from = i * blockSize;
            long hash = pool.hashBlock(lastHash, tokens, from);
            int canonical = pool.cache(blockIds[i], hash, lastCachedId, lastCachedGeneration, tokens, from);
            lastHash = hash;
            lastCachedId = canonical;
            lastCachedGeneration = pool.generation(canonical);
        }
        numCachedBlocks = Math.max(numCachedBlocks, numFull);
    }

    /** Gives every block back to the pool (finish, cancel, preemption) and empties the table. */
    public void free() {
        pool.free(Arrays.copyOf(blockIds, numBlocks));
        numBlocks = 0;
        numTokens = 0;
        numCachedBlocks = 0;
        lastHash = BlockHashFunction.ROOT_HASH;
        lastCachedId = -1;
        lastCachedGeneration = 0;
    }

    private int numBlocksFor(int tokens) {
        return (tokens + blockSize - 1) / blockSize;
    }

    private void ensureCapacity(int blocks) {
        if (blocks > blockIds.length) {
            blockIds = Arrays.copyOf(blockIds, Math.max(blocks, blockIds.length * 2));
        }
    }

    private void checkPosition(int position) {
        if (position < 0 || position >= numTokens) {
            throw new IndexOutOfBoundsException("block table: position " + position + " outside [0, " + numTokens + ")");
        }
    }
}
