package dev.tessera.kernels;

/** Keys and values of one sequence for every layer, held where its {@link Backend} computes attention. */
public interface KvCache extends AutoCloseable {
    /** Positions this cache can hold. */
    int capacity();

    @Override
    void close();
}
