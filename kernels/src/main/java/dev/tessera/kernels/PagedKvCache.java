package dev.tessera.kernels;

import java.util.Arrays;

/**
 * One sequence's view of a {@link KvBlockStore}: position p lives at slot {@code p % blockSize} of block
 * {@code block(p / blockSize)}. The scheduler owns the blocks (allocation, sharing, freeing) and hands the table over
 * with {@link #setBlocks} whenever it changes; {@link #version} lets a device backend re-upload it only then.
 */
public final class PagedKvCache implements KvCache {
    private final KvBlockStore store;
    private int[] blocks = new int[0];
    private int numBlocks;
    private long version;

    public PagedKvCache(KvBlockStore store) {
        this.store = store;
    }

    public KvBlockStore store() {
        return store;
    }

    /** Replaces the table with {@code ids[0, n)}; ids must be blocks of the store. */
    public void setBlocks(int[] ids, int n) {
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= store.numBlocks()) throw new IllegalArgumentException("KV block " + ids[i] + " outside the store's " + store.numBlocks());
        if (n == numBlocks && Arrays.equals(blocks, 0, n, ids, 0, n)) return;
        if (n > blocks.length) blocks = Arrays.copyOf(blocks, Math.max(n, blocks.length * 2));
        System.arraycopy(ids, 0, blocks, 0, n);
        numBlocks = n;
        version++;
    }

    public int numBlocks() {
        return numBlocks;
    }

    /** The table; entries past {@link #numBlocks} are stale. Read-only for backends. */
    public int[] blocks() {
        return blocks;
    }

    public int block(int index) {
        if (index >= numBlocks) throw new IllegalStateException("position " + index * store.blockSize() + " beyond the sequence's " + numBlocks + " KV blocks");
        return blocks[index];
    }

    /** Changes every time {@link #setBlocks} changes the table. */
    public long version() {
        return version;
    }

    @Override
    public int capacity() {
        return numBlocks * store.blockSize();
    }

    /** Forgets the table; the blocks themselves go back to the scheduler's pool, not here. */
    @Override
    public void close() {
        numBlocks = 0;
        version++;
    }
}
