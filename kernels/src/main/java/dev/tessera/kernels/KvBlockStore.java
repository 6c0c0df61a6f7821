package dev.tessera.kernels;

/**
 * Key and value memory for every layer, cut into {@code numBlocks} blocks of {@code blockSize} positions that all
 * sequences share. Which block holds which positions of which sequence is the scheduler's business: a sequence reads
 * and writes the store only through the block table of its {@link PagedKvCache}.
 */
public interface KvBlockStore extends AutoCloseable {
    int numBlocks();

    int blockSize();

    KvCacheType type();

    /** Bytes one block takes over all layers, keys and values: what {@code --kv-cache-memory} is divided by. */
    static long bytesPerBlock(int numLayers, int kvDim, int blockSize, KvCacheType type) {
        return 2L * numLayers * blockSize * kvDim * type.bytes();
    }

    @Override
    void close();
}
