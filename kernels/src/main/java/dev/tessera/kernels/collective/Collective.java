package dev.tessera.kernels.collective;

import dev.tessera.kernels.Activations;

/**
 * Collective operations of one rank in a fixed group, over activations of the backend the rank computes on (device
 * or host memory). Calls are queued in step order on that backend, like its other ops: a device implementation
 * (NCCL) enqueues them on the backend's stream, so a recorded step may contain them ({@link #recordable}); a host
 * implementation (TCP) stages rows through the heap and returns when they are done.
 *
 * <p>Every rank calls the same operations with the same row counts in the same order. A failure (a dead peer, a bad
 * frame, a timeout) throws {@link CollectiveException} and breaks the group: every later call throws too.
 */
public interface Collective extends AutoCloseable {
    /** This process's rank, 0 ≤ rank < size; rank 0 is the master. */
    int rank();

    /** Number of ranks in the group. */
    int size();

    /** The algorithm, as {@code --collective} spells it: star, ring, nccl, or single (one rank). */
    String name();

    /** Whether calls may sit inside a recorded backend step (CUDA graph): device collectives only. */
    default boolean recordable() {
        return false;
    }

    /** x[0, numTokens) := its element-wise sum over all ranks, in place; every rank gets the same bits. */
    void allReduce(Activations x, int numTokens);

    /**
     * Sends {@code sendCounts[d]} rows to each rank d and receives each rank's rows for this one: {@code send} holds
     * the outgoing rows grouped by destination in rank order; on return {@code recv} holds the incoming rows grouped
     * by source in rank order, and {@code recvCounts[s]} says how many came from rank s. Returns the rows received.
     * Row widths of send and recv must match.
     */
    int allToAll(Activations send, int[] sendCounts, Activations recv, int[] recvCounts);

    /** Closes the links; peers still waiting in a call then fail with {@link CollectiveException}. */
    @Override
    void close();
}
