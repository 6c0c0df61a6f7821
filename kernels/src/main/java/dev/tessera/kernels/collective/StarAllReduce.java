package dev.tessera.kernels.collective;

import dev.tessera.kernels.collective.CollectiveFrame.Type;

import java.util.List;
import java.util.concurrent.Future;

/**
 * Star allreduce (the TPI-LLM choice for edge links, where latency dominates): every worker sends its part to rank 0,
 * rank 0 adds them in rank order — ((x0 + x1) + x2) + ... — and sends the one result back. Two network hops whatever
 * the group size, and every rank ends with the same bits. Rank 0's link carries (N-1) times the data of a worker's.
 */
public final class StarAllReduce extends TcpAllReduce {
    private final Future<?>[] sends;

    /** @param links rank 0: the links to ranks 1..N-1 in rank order; a worker: its one link to rank 0 */
    StarAllReduce(int rank, int size, List<PeerLink> links) {
        super(rank, size, links);
        if (rank == 0 && links.size() != size - 1 || rank != 0 && links.size() != 1) {
            throw new IllegalStateException("star rank " + rank + " of " + size + " got " + links.size() + " links");
        }
        this.sends = new Future<?>[links.size()];
    }

    @Override
    public AllReduceKind kind() {
        return AllReduceKind.STAR;
    }

    @Override
    protected void reduce(float[] data, int offset, int length) {
        if (rank == 0) {
            // Fixed rank order makes the sum deterministic; partials that arrive early wait in the socket buffers.
            for (PeerLink worker : links) worker.receive(Type.PARTIAL, data, offset, length, true, "allreduce");
            for (int i = 0; i < links.size(); i++) sends[i] = links.get(i).sendAsync(Type.RESULT, data, offset, length);
            for (int i = 0; i < links.size(); i++) links.get(i).awaitSent(sends[i], "allreduce");
        } else {
            PeerLink master = links.getFirst();
            master.awaitSent(master.sendAsync(Type.PARTIAL, data, offset, length), "allreduce");
            master.receive(Type.RESULT, data, offset, length, false, "allreduce");
        }
    }
}
