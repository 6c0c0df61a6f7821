package dev.tessera.kernels.cpu;

import dev.tessera.kernels.KvCache;

/** K and V per layer as [position][numKvHeads * headDim] F32 rows, grown on demand up to capacity. */
public final class CpuKvCache implements KvCache {
    final int kvDim;
    final int capacity;
    final float[][] keys;
    final float[][] values;

    CpuKvCache(int numLayers, int kvDim, int capacity) {
        this.kvDim = kvDim;
        this.capacity = capacity;
        this.keys = new float[numLayers][];
        this.values = new float[numLayers][];
    }

    @Override
    public int capacity() {
        return capacity;
    }

    /** Makes sure layer's arrays hold positions [0, numPositions). */
    void reserve(int layer, int numPositions) {
        if (numPositions > capacity) throw new IllegalStateException("position " + (numPositions - 1) + " beyond KV capacity " + capacity);
        float[] k = keys[layer];
        if (k != null && k.length >= (long) numPositions * kvDim) return;
        int grown = Math.min(capacity, Math.max(numPositions, k == null ? 256 : k.length / kvDim * 2));
        keys[layer] = k == null ? new float[grown * kvDim] : java.util.Arrays.copyOf(k, grown * kvDim);
        values[layer] = values[layer] == null ? new float[grown * kvDim] : java.util.Arrays.copyOf(values[layer], grown * kvDim);
    }

    @Override
    public void close() {
        java.util.Arrays.fill(keys, null);
        java.util.Arrays.fill(values, null);
    }
}
