package dev.tessera.kernels.collective;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.Backend;

/**
 * A {@link Collective} over a TCP {@link AllReduce} (star or ring), for ranks whose links are sockets: CPU edge devices
 * after TPI-LLM, or GPUs without NCCL. Rows are staged through the heap: downloaded from the backend, reduced over the
 * links, uploaded back, so a call completes before it returns and cannot sit in a recorded step.
 *
 * <p>All-to-all goes over the same allreduce: every rank writes its outgoing rows at their place in a zero-filled
 * matrix of all ranks' rows and the sum hands everyone everything (x + 0 is exact, so no row changes). That moves
 * size times the bytes a direct exchange would: enough for correctness and small groups; expert parallelism over
 * many devices wants direct links.
 */
public final class HostCollective implements Collective {
    private final AllReduce links;
    private final Backend backend;
    private float[] staged = new float[0];

    public HostCollective(AllReduce links, Backend backend) {
        this.links = links;
        this.backend = backend;
    }

    /** A group of one: every call returns at once. */
    public static HostCollective single(Backend backend) {
        return new HostCollective(CollectiveGroup.single(), backend);
    }

    @Override public int rank() { return links.rank(); }

    @Override public int size() { return links.size(); }

    @Override public String name() { return links.size() == 1 ? "single" : links.kind().flagName(); }

    @Override
    public void allReduce(Activations x, int numTokens) {
        if (links.size() == 1) return;
        int n = numTokens * x.width();
        float[] buf = staging(n);
        backend.download(x, buf, numTokens);
        links.sum(buf, 0, n);
        backend.upload(buf, x, numTokens);
    }

    @Override
    public int allToAll(Activations send, int[] sendCounts, Activations recv, int[] recvCounts) {
        int size = links.size(), rank = links.rank(), width = send.width();
        if (recv.width() != width) throw new IllegalArgumentException("all-to-all rows of " + width + " floats into rows of " + recv.width());
        if (sendCounts.length != size || recvCounts.length != size) throw new IllegalArgumentException("all-to-all counts for " + size + " ranks");
        // counts[src * size + dst]: rows src sends to dst, known to every rank after one sum.
        float[] counts = new float[size * size];
        int sendRows = 0;
        for (int d = 0; d < size; d++) { counts[rank * size + d] = sendCounts[d]; sendRows += sendCounts[d]; }
        links.sum(counts, 0, counts.length);
        int total = 0, received = 0, before = 0;
        for (int src = 0; src < size; src++) {
            for (int dst = 0; dst < size; dst++) {
                int c = (int) counts[src * size + dst];
                if (src == rank && dst == 0) before = total;
                total += c;
            }
        }
        for (int s = 0; s < size; s++) { recvCounts[s] = (int) counts[s * size + rank]; received += recvCounts[s]; }
        if (received > recv.maxTokens()) throw new IllegalArgumentException("all-to-all receives " + received + " rows, buffer holds " + recv.maxTokens());
        float[] all = new float[total * width];
        float[] mine = new float[sendRows * width];
        if (sendRows > 0) backend.download(send, mine, sendRows);
        System.arraycopy(mine, 0, all, before * width, mine.length);
        links.sum(all, 0, all.length);
        // Rows for this rank, grouped by source in rank order.
        float[] out = new float[Math.max(1, received) * width];
        int at = 0, offset = 0;
        for (int src = 0; src < size; src++) {
            for (int dst = 0; dst < size; dst++) {
                int c = (int) counts[src * size + dst];
                if (dst == rank) { System.arraycopy(all, offset * width, out, at * width, c * width); at += c; }
                offset += c;
            }
        }
        if (received > 0) backend.upload(out, recv, received);
        return received;
    }

    private float[] staging(int n) {
        if (staged.length < n) staged = new float[n];
        return staged;
    }

    @Override
    public void close() {
        links.close();
    }
}
