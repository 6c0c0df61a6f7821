package dev.tessera.kernels.collective;

import java.util.List;
import java.util.Objects;

/**
 * What the TCP allreduce algorithms share: argument checks, the links, and the rule that the first failure breaks the
 * group (the peers' sequence numbers no longer line up, so nothing after it could be trusted).
 */
abstract sealed class TcpAllReduce implements AllReduce permits StarAllReduce, RingAllReduce {
    protected final int rank;
    protected final int size;
    protected final List<PeerLink> links;
    private String failure;
    private boolean closed;

    TcpAllReduce(int rank, int size, List<PeerLink> links) {
        this.rank = rank;
        this.size = size;
        this.links = List.copyOf(links);
    }

    @Override
    public final void sum(float[] data, int offset, int length) {
        Objects.checkFromIndexSize(offset, length, data.length);
        if (closed) throw new CollectiveException("rank " + rank + ": allreduce group is closed");
        if (failure != null) throw new CollectiveException("rank " + rank + ": allreduce group is broken by an earlier failure: " + failure);
        if (size == 1) return;
        try {
            reduce(data, offset, length);
        } catch (CollectiveException e) {
            failure = e.getMessage();
            closeLinks();
            throw e;
        }
    }

    /** Runs one allreduce over the links; throws CollectiveException on any peer failure. */
    protected abstract void reduce(float[] data, int offset, int length);

    @Override
    public final int rank() {
        return rank;
    }

    @Override
    public final int size() {
        return size;
    }

    @Override
    public final void close() {
        closed = true;
        closeLinks();
    }

    private void closeLinks() {
        for (PeerLink link : links) link.close();
    }
}
