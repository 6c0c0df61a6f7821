package dev.tessera.kernels.cpu;

import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCacheType;

/**
 * The paged KV store on the heap: per layer one array of keys and one of values, F32 ({@code float[]}) or F16
 * ({@code short[]} of half-float bits). Each is laid out by KV head first, then block: [kvHeads][numBlocks][...], so a
 * sequence whose blocks are consecutive has each head's keys (and values) in one run, which one attention job streams.
 * Within a block a head's keys are transposed, [headDim][blockSize] (dimension d of the block's positions side by side,
 * scored a vector of positions at a time by {@link CpuAttention}), and its values are rows, [blockSize][headDim].
 */
final class CpuKvBlockStore implements KvBlockStore {
    final int numLayers;
    final int kvDim;
    final int headDim;
    final int blockSize;
    final int numBlocks;
    final KvCacheType type;
    final float[][] keys, values;
    final short[][] halfKeys, halfValues;

    CpuKvBlockStore(int numLayers, int kvDim, int headDim, int blockSize, int numBlocks, KvCacheType type) {
        if (numLayers < 1 || kvDim < 1 || headDim < 1 || kvDim % headDim != 0 || blockSize < 1 || numBlocks < 1)
            throw new IllegalArgumentException("KV store of " + numBlocks + " blocks x " + blockSize + " positions x " + numLayers + " layers x " + kvDim);
        long perLayer = (long) numBlocks * blockSize * kvDim;
        if (perLayer > Integer.MAX_VALUE - 16)
            throw new IllegalArgumentException("KV store of " + numBlocks + " blocks of " + blockSize + " positions x " + kvDim
                    + " needs " + perLayer + " elements per layer, more than one CPU array holds; lower --kv-cache-memory");
        this.numLayers = numLayers;
        this.kvDim = kvDim;
        this.headDim = headDim;
        this.blockSize = blockSize;
        this.numBlocks = numBlocks;
        this.type = type;
        boolean half = type == KvCacheType.F16;
        this.keys = half ? null : new float[numLayers][];
        this.values = half ? null : new float[numLayers][];
        this.halfKeys = half ? new short[numLayers][] : null;
        this.halfValues = half ? new short[numLayers][] : null;
        for (int l = 0; l < numLayers; l++) {
            if (half) { halfKeys[l] = new short[(int) perLayer]; halfValues[l] = new short[(int) perLayer]; }
            else { keys[l] = new float[(int) perLayer]; values[l] = new float[(int) perLayer]; }
        }
    }

    @Override public int numBlocks() { return numBlocks; }

    @Override public int blockSize() { return blockSize; }

    @Override public KvCacheType type() { return type; }

    @Override
    public void close() {
        for (int l = 0; l < numLayers; l++) {
            if (keys != null) { keys[l] = null; values[l] = null; }
            else { halfKeys[l] = null; halfValues[l] = null; }
        }
    }
}
