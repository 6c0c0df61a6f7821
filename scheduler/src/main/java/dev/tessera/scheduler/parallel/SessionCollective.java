package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.collective.Collective;
import dev.tessera.kernels.collective.CollectiveException;

import java.util.function.Supplier;

/**
 * Rank 0's collective as a model graph holds it: whatever group the master's current session has, which a reconnect
 * after a failure replaces. Between sessions every call fails. Never {@link #recordable}: a recorded step would hold
 * on to one session's NCCL communicator after a reconnect has replaced it.
 */
public final class SessionCollective implements Collective {
    private final Supplier<WorkerGroup> session;
    private final int size;
    private final String name;

    public SessionCollective(Supplier<WorkerGroup> session, int size, String name) {
        this.session = session;
        this.size = size;
        this.name = name;
    }

    private Collective current() {
        WorkerGroup s = session.get();
        if (s == null) throw new CollectiveException("rank 0: no session with the workers");
        return s.collective();
    }

    @Override public int rank() { return 0; }
    @Override public int size() { return size; }
    /** The current session's collective (AUTO is only decided at set-up), else the one asked for. */
    @Override public String name() {
        WorkerGroup s = session.get();
        return s == null ? name : s.collective().name();
    }
    @Override public void allReduce(Activations x, int numTokens) { current().allReduce(x, numTokens); }
    @Override public int allToAll(Activations send, int[] sendCounts, Activations recv, int[] recvCounts) {
        return current().allToAll(send, sendCounts, recv, recvCounts);
    }
    @Override public void close() {}
}
