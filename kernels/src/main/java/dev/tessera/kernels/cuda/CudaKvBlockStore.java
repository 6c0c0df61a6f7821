package dev.tessera.kernels.cuda;

import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.PagedKvCache;

import java.lang.ref.ReferenceQueue;
import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.List;
import java.util.WeakHashMap;

/**
 * The paged KV store in device memory: one allocation laid out like a private {@link CudaKvCache},
 * [2 (K, V)][numLayers][numBlocks][KV_BLOCK][kvDim] of F32 or F16, except that numBlocks is the pool size and every
 * sequence ({@link PagedKvCache}) picks its blocks through its own table. The kernels take a device copy of that
 * table per token (see kv_row in common.cuh); this class keeps one per sequence, re-uploaded only when
 * {@link PagedKvCache#version()} changed. When to upload is the backend's call (immediately when eager, at endStep
 * when a step is being captured or replayed), so this class only says which tables are stale.
 *
 * <p>Device tables are freed with the store, or when their sequence's cache is garbage collected (the backend
 * calls {@link #reclaim} where freeing is safe). Single-threaded like the backend.
 */
final class CudaKvBlockStore implements KvBlockStore {
    /** Entries a device table starts with; it doubles when a sequence outgrows it. */
    static final int MIN_TABLE_ENTRIES = 64;

    final int numLayers;
    final int kvDim;
    final int numBlocks;
    final KvCacheType type;
    final long pointer;
    private final CudaBackend owner;
    private final CudaDevice device;
    private final WeakHashMap<PagedKvCache, Table> tables = new WeakHashMap<>();
    private final ReferenceQueue<PagedKvCache> dropped = new ReferenceQueue<>();
    private final List<Long> retired = new ArrayList<>();
    private boolean closed;

    /** A sequence's table on the device: capacity entries at pointer, holding the cache's table as of version. */
    static final class Table extends WeakReference<PagedKvCache> {
        long pointer;
        int capacity;
        long version;
        boolean stale = true;

        Table(PagedKvCache cache, ReferenceQueue<PagedKvCache> queue) {
            super(cache, queue);
        }
    }

    CudaKvBlockStore(CudaBackend owner, CudaDevice device, int numLayers, int kvDim, int numBlocks, KvCacheType type) {
        this.owner = owner;
        this.device = device;
        this.numLayers = numLayers;
        this.kvDim = kvDim;
        this.numBlocks = numBlocks;
        this.type = type;
        long bytes = sizeBytes(numLayers, numBlocks, kvDim, type);
        this.pointer = device.allocate(bytes);
        device.zero(pointer, bytes);
    }

    /**
     * Checks the arguments of {@code allocateKvBlocks} against what the CUDA kernels can do: blocks of exactly
     * KV_BLOCK positions, head sizes attention supports. Host-side so tests can run it without a GPU.
     */
    static void validate(int numLayers, int numKvHeads, int headDim, int blockSize, int numBlocks, KvCacheType type) {
        if (numLayers < 1 || numKvHeads < 1 || headDim < 1 || numBlocks < 1)
            throw new IllegalArgumentException("KV store of " + numBlocks + " blocks x " + numLayers + " layers x " + numKvHeads + " KV heads of " + headDim);
        if (blockSize != LaunchGeometry.KV_BLOCK)
            throw new IllegalArgumentException("KV block size " + blockSize + ": the CUDA kernels need blocks of " + LaunchGeometry.KV_BLOCK + " positions");
        if (headDim > LaunchGeometry.MAX_HEAD_DIM)
            throw new IllegalArgumentException("head size " + headDim + ": the CUDA attention kernels take at most " + LaunchGeometry.MAX_HEAD_DIM);
        if (type == null) throw new IllegalArgumentException("no --kv-cache-type given");
    }

    /** Bytes of the whole store: keys and values of every layer and block. */
    static long sizeBytes(int numLayers, int numBlocks, int kvDim, KvCacheType type) {
        return 2L * numLayers * numBlocks * LaunchGeometry.KV_BLOCK * kvDim * type.bytes();
    }

    /** Entries of a device table that holds {@code numBlocks} ids: a power of two, at least MIN_TABLE_ENTRIES. */
    static int tableCapacity(int numBlocks) {
        int c = MIN_TABLE_ENTRIES;
        while (c < numBlocks) c = Math.multiplyExact(c, 2);
        return c;
    }

    /**
     * The device table of {@code cache}, sized for its current blocks. When the cache's version differs from what
     * the device holds, the table is marked stale: the caller uploads it ({@link #markUploaded}) before any kernel
     * that reads it runs. A table that outgrew its allocation moves; the old allocation is retired, freed by
     * {@link #reclaim} (a replayed graph may still read it until then).
     */
    Table table(PagedKvCache cache) {
        requireOpen();
        Table t = tables.get(cache);
        if (t == null) {
            t = new Table(cache, dropped);
            tables.put(cache, t);
        }
        if (t.capacity < cache.numBlocks() || t.pointer == 0) {
            if (t.pointer != 0) retired.add(t.pointer);
            t.capacity = tableCapacity(cache.numBlocks());
            t.pointer = device.allocate(4L * t.capacity);
            t.stale = true;
        }
        if (t.version != cache.version()) t.stale = true;
        return t;
    }

    void markUploaded(Table t, long version) {
        t.version = version;
        t.stale = false;
    }

    /** Frees retired tables and those of collected caches; call only where no queued work can still read them. */
    void reclaim() {
        for (long p : retired) device.free(p);
        retired.clear();
        for (var r = dropped.poll(); r != null; r = dropped.poll()) {
            Table t = (Table) r;
            device.free(t.pointer);
            t.pointer = 0;
        }
    }

    boolean closed() {
        return closed;
    }

    void requireOpen() {
        if (closed) throw new IllegalStateException("KV block store of " + numBlocks + " blocks used after close");
    }

    @Override public int numBlocks() { return numBlocks; }

    @Override public int blockSize() { return LaunchGeometry.KV_BLOCK; }

    @Override public KvCacheType type() { return type; }

    /** Frees the blocks and every sequence's table. Caches over this store fail from then on. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        owner.release(this);
    }

    /** Called by the backend (synchronized, outside any step) to free the device memory. */
    void freeAll() {
        reclaim();
        for (Table t : tables.values()) {
            device.free(t.pointer);
            t.pointer = 0;
        }
        tables.clear();
        device.free(pointer);
    }
}
