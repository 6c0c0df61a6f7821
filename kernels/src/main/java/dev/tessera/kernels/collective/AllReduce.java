package dev.tessera.kernels.collective;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A sum-allreduce over a fixed group of ranks (tensor-parallel devices). Every rank calls {@link #sum} with the same
 * {@code length} in the same order; when it returns, each rank's range holds the element-wise sum over all ranks.
 *
 * <p>Blocking and not thread-safe: one caller per rank at a time. A failure (dead peer, bad frame, timeout) throws
 * {@link CollectiveException}, and the group is broken from then on: every later call throws too.
 *
 * <p>Float sums are not associative, so the result depends on the order in which an implementation adds the ranks'
 * parts. Each implementation fixes that order, so results are bit-identical on every rank and across runs, but
 * {@link StarAllReduce} and {@link RingAllReduce} may differ from each other in the last bit: pick one algorithm
 * and keep it when comparing outputs.
 *
 * <p>The TCP implementations live here; a GPU group (NCCL) would implement the same interface.
 */
public interface AllReduce extends AutoCloseable {

    /** Replaces data[offset, offset + length) in place by its sum over all ranks. */
    void sum(float[] data, int offset, int length);

    default void sum(float[] data) {
        sum(data, 0, data.length);
    }

    /** Host-memory variant: sums {@code length} floats of an off-heap segment, staged through the heap. */
    default void sum(MemorySegment data, int length) {
        float[] staged = data.asSlice(0, (long) length * Float.BYTES).toArray(ValueLayout.JAVA_FLOAT);
        sum(staged, 0, length);
        MemorySegment.copy(staged, 0, data, ValueLayout.JAVA_FLOAT, 0, length);
    }

    /** This process's rank, 0 ≤ rank < size; rank 0 is the master. */
    int rank();

    /** Number of ranks in the group. */
    int size();

    /** Which algorithm this is. */
    AllReduceKind kind();

    /** Closes the connections; peers still waiting in {@link #sum} then fail with {@link CollectiveException}. */
    @Override
    void close();
}
