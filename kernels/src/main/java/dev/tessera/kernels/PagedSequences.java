package dev.tessera.kernels;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * The block tables of the live sequences over one {@link KvBlockStore}, kept in step with a scheduler that owns the
 * blocks: it sends only what changed (a sequence's table from some entry on, sequences let go). The same mirror runs
 * on every holder of KV — the engine's own device, each tensor-parallel rank, each attention memory node — so all
 * address the same blocks under the same ids.
 */
public final class PagedSequences implements AutoCloseable {
    private final KvBlockStore store;
    private final Map<Integer, PagedKvCache> caches = new HashMap<>();

    public PagedSequences(KvBlockStore store) {
        this.store = store;
    }

    public KvBlockStore store() {
        return store;
    }

    public int size() {
        return caches.size();
    }

    /** Forgets a sequence's table (its blocks went back to the scheduler's pool); unknown ids are ignored. */
    public void release(int id) {
        PagedKvCache c = caches.remove(id);
        if (c != null) c.close();
    }

    /**
     * Sequence {@code id}'s cache after its table entries {@code tableFrom ..} became {@code newBlocks} (none: the table
     * is unchanged), checked to hold positions up to {@code endPosition} (exclusive).
     *
     * @throws IllegalArgumentException for a change past the table's end or positions beyond its blocks
     */
    public PagedKvCache update(int id, int tableFrom, int[] newBlocks, int endPosition) {
        PagedKvCache cache = caches.computeIfAbsent(id, i -> new PagedKvCache(store));
        if (newBlocks.length > 0) {
            if (tableFrom < 0 || tableFrom > cache.numBlocks())
                throw new IllegalArgumentException("sequence " + id + ": table change at entry " + tableFrom + " of a table of " + cache.numBlocks());
            int[] ids = Arrays.copyOf(cache.blocks(), tableFrom + newBlocks.length);
            System.arraycopy(newBlocks, 0, ids, tableFrom, newBlocks.length);
            cache.setBlocks(ids, ids.length);
        }
        if (endPosition > cache.capacity())
            throw new IllegalArgumentException("sequence " + id + ": positions up to " + endPosition + " beyond its " + cache.numBlocks() + " KV blocks");
        return cache;
    }

    /** Forgets every sequence. */
    public void clear() {
        for (PagedKvCache c : caches.values()) c.close();
        caches.clear();
    }

    /** Forgets every sequence and frees the store. */
    @Override
    public void close() {
        clear();
        store.close();
    }
}
