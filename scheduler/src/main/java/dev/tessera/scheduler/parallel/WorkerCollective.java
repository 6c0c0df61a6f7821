package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.collective.AllReduce;
import dev.tessera.kernels.collective.Collective;
import dev.tessera.kernels.collective.CollectiveGroup;
import dev.tessera.kernels.collective.CollectiveKind;
import dev.tessera.kernels.collective.HostCollective;
import dev.tessera.kernels.cuda.CudaBackend;
import dev.tessera.kernels.cuda.NcclCollective;

import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;

/**
 * A worker's side of the group set-up (tensor-parallel and expert-parallel alike): the listener it offers in its hello
 * answer, then the collective the master's group frame names — TCP links, or NCCL on this worker's CUDA device.
 */
public final class WorkerCollective {
    private WorkerCollective() {}

    /**
     * The listener for the group's TCP links, or null when this rank needs none. Only a ring has workers listen: what
     * AUTO becomes (star or NCCL) never does, so the worker need not know the outcome yet.
     */
    public static ServerSocket listener(CollectiveKind requested, int rank, int size, Socket control) {
        return requested == CollectiveKind.RING && CollectiveGroup.needsListener(requested.tcp(), rank, size)
                ? CollectiveGroup.listen(new InetSocketAddress(control.getLocalAddress(), 0)) : null;
    }

    /** The hello answer: the listener's address (if any), what this worker computes on and whether it has NCCL. */
    public static TpProtocol.HelloOk helloOk(ServerSocket listener, Socket control, Backend backend) {
        String mine = listener == null ? "" : control.getLocalAddress().getHostAddress() + ":" + listener.getLocalPort();
        return new TpProtocol.HelloOk(mine, backend.name(), NcclCollective.libraryProblem());
    }

    /**
     * Joins the group {@code group} describes as {@code rank} of {@code size}; takes ownership of {@code listener}.
     * For NCCL it answers the master with {@link TpProtocol.GroupJoined} either way, so the master names this worker
     * when its ncclCommInitRank fails or never returns.
     */
    public static Collective join(TpProtocol.Group group, CollectiveKind requested, int rank, int size, ServerSocket listener,
                                  Backend backend, Duration timeout, DataOutputStream out) throws IOException {
        CollectiveKind kind;
        try {
            kind = CollectiveKind.parse(group.collective());
        } catch (IllegalArgumentException e) {
            kind = null;
        }
        boolean consistent = kind == requested || requested == CollectiveKind.AUTO && (kind == CollectiveKind.STAR || kind == CollectiveKind.NCCL);
        if (kind == null || !consistent) {
            if (listener != null) listener.close();
            throw new TpProtocol.ProtocolException("group frame for " + group.collective() + " after a hello asking for " + requested.flagName());
        }
        if (kind != CollectiveKind.NCCL) {
            AllReduce links = CollectiveGroup.open(kind.tcp(), rank, TensorParallelWorker.parseAddresses(group.addresses(), size), listener, timeout);
            return new HostCollective(links, backend);
        }
        if (listener != null) listener.close();
        if (!(backend instanceof CudaBackend cuda)) {
            String why = "rank " + rank + " computes on " + backend.name() + ", not CUDA, and cannot join an NCCL group";
            TpProtocol.write(out, new TpProtocol.GroupJoined(why));
            throw new IOException(why);
        }
        NcclCollective nccl;
        try {
            nccl = new NcclJoin(cuda, rank, size, group.ncclId()).await(System.nanoTime() + timeout.toNanos());
        } catch (IOException e) {
            TpProtocol.write(out, new TpProtocol.GroupJoined(String.valueOf(e.getMessage())));
            throw e;
        }
        try {
            TpProtocol.write(out, new TpProtocol.GroupJoined(""));
        } catch (IOException e) {
            nccl.abort("the master went away during NCCL set-up");
            throw e;
        }
        return nccl;
    }
}
