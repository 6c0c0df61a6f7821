package dev.tessera.kernels.cuda;

import dev.tessera.kernels.KvCache;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One sequence's keys and values in device memory, laid out for a paged cache: F32
 * [2 (K, V)][numLayers][numBlocks][KV_BLOCK tokens][kvDim], read and written only through an int block table that
 * maps the sequence's logical block i to a physical block. For now every cache owns its blocks and its table is
 * the identity (block i at i); a shared block pool only has to hand out other tables.
 */
public final class CudaKvCache implements KvCache {
    final int numLayers;
    final int kvDim;
    final int capacity;
    final int numBlocks;
    final long pointer;
    final long blockTable;
    private final CudaBackend owner;
    private boolean closed;

    CudaKvCache(CudaBackend owner, CudaDevice device, int numLayers, int kvDim, int capacity) {
        this.owner = owner;
        this.numLayers = numLayers;
        this.kvDim = kvDim;
        this.capacity = capacity;
        this.numBlocks = LaunchGeometry.numKvBlocks(capacity);
        long bytes = sizeBytes(numLayers, numBlocks, kvDim);
        this.pointer = device.allocate(bytes);
        device.zero(pointer, bytes);
        this.blockTable = device.allocate(4L * numBlocks);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment table = arena.allocateFrom(ValueLayout.JAVA_INT, contiguousBlockTable(numBlocks));
            device.copyToDevice(blockTable, table, 4L * numBlocks);
            device.synchronize();
        }
    }

    /** Bytes of the K and V blocks of a cache. */
    static long sizeBytes(int numLayers, int numBlocks, int kvDim) {
        return 2L * numLayers * numBlocks * LaunchGeometry.KV_BLOCK * kvDim * Float.BYTES;
    }

    /** The identity table: logical block i is physical block i. */
    static int[] contiguousBlockTable(int numBlocks) {
        int[] table = new int[numBlocks];
        for (int i = 0; i < numBlocks; i++) table[i] = i;
        return table;
    }

    /**
     * Float index of the K (or V) row of {@code position}, layer {@code layer}, given a block table: the host twin of
     * kv_row in common.cuh, used by tests.
     */
    static long rowIndex(int[] table, int numLayers, int numBlocks, int kvDim, int layer, int position, boolean value) {
        long phys = table[position / LaunchGeometry.KV_BLOCK];
        long row = (((value ? 1L : 0L) * numLayers + layer) * numBlocks + phys) * LaunchGeometry.KV_BLOCK
                + position % LaunchGeometry.KV_BLOCK;
        return row * kvDim;
    }

    @Override
    public int capacity() {
        return capacity;
    }

    boolean closed() {
        return closed;
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        owner.release(this);
    }
}
