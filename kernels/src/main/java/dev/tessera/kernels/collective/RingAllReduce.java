package dev.tessera.kernels.collective;

import dev.tessera.kernels.collective.CollectiveFrame.Type;

import java.util.List;
import java.util.concurrent.Future;

/**
 * Ring allreduce: the range is cut into N chunks; a reduce-scatter of N-1 steps leaves rank r with the full sum of
 * chunk r+1, and an all-gather of N-1 steps passes the sums around. Each rank sends only 2(N-1)/N of the data, but
 * the 2(N-1) steps are sequential, so each pays a link latency. Chunk c is summed in ring order, ((x_c + x_c+1) + ...) + x_c-1,
 * deterministic across runs and identical on every rank, but not the order {@link StarAllReduce} uses, so the two
 * may differ in the last bit.
 */
public final class RingAllReduce extends TcpAllReduce {
    private final PeerLink next;
    private final PeerLink previous;

    /** @param next the link rank sends on (to rank+1); @param previous the link it receives on (from rank-1) */
    RingAllReduce(int rank, int size, PeerLink next, PeerLink previous) {
        super(rank, size, List.of(next, previous));
        this.next = next;
        this.previous = previous;
    }

    @Override
    public AllReduceKind kind() {
        return AllReduceKind.RING;
    }

    @Override
    protected void reduce(float[] data, int offset, int length) {
        for (int step = 0; step < size - 1; step++) {
            exchange(data, offset, length, Type.RING_REDUCE, chunk(rank - step), chunk(rank - step - 1), true);
        }
        for (int step = 0; step < size - 1; step++) {
            exchange(data, offset, length, Type.RING_GATHER, chunk(rank + 1 - step), chunk(rank - step), false);
        }
    }

    /** Sends chunk {@code sendChunk} to the next rank while receiving chunk {@code receiveChunk} from the previous. */
    private void exchange(float[] data, int offset, int length, Type type, int sendChunk, int receiveChunk, boolean add) {
        int sendStart = chunkStart(offset, length, sendChunk);
        int receiveStart = chunkStart(offset, length, receiveChunk);
        Future<?> sent = next.sendAsync(type, data, sendStart, chunkStart(offset, length, sendChunk + 1) - sendStart);
        previous.receive(type, data, receiveStart, chunkStart(offset, length, receiveChunk + 1) - receiveStart, add, "allreduce");
        next.awaitSent(sent, "allreduce");
    }

    private int chunk(int c) {
        return Math.floorMod(c, size);
    }

    /** Chunk c covers [start(c), start(c+1)); sizes differ by at most one float, and may be 0 when length < size. */
    private int chunkStart(int offset, int length, int c) {
        return offset + (int) ((long) c * length / size);
    }
}
