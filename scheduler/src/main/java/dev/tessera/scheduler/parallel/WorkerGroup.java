package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.collective.AllReduce;
import dev.tessera.kernels.collective.Collective;
import dev.tessera.kernels.collective.CollectiveGroup;
import dev.tessera.kernels.collective.CollectiveKind;
import dev.tessera.kernels.collective.HostCollective;
import dev.tessera.kernels.cuda.CudaBackend;
import dev.tessera.kernels.cuda.NcclCollective;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * A master's side of a group of worker processes (tensor-parallel ranks, expert-parallel devices): one control
 * connection per worker, opened with a hello the caller writes, and the collective over all of them with the master
 * as rank 0 — TCP (star, ring) or NCCL, as {@link CollectiveChoice} decides from the hello answers. Also names the
 * worker to blame when a step fails.
 */
public final class WorkerGroup implements AutoCloseable {

    /** One worker's control connection and its answer to the hello (the address it offers, what it computes on). */
    public record Connection(InetSocketAddress address, int rank, Socket socket, DataInputStream in, DataOutputStream out, TpProtocol.HelloOk hello) {}

    /** Sends the hello on a fresh connection and returns the worker's answer, or throws. */
    @FunctionalInterface
    public interface Handshake {
        TpProtocol.HelloOk hello(String name, int rank, DataInputStream in, DataOutputStream out) throws IOException;
    }

    /** A late worker's own NCCL timeout should reach the master (naming it) before the master's runs out. */
    private static final Duration NCCL_ANSWER_GRACE = Duration.ofSeconds(10);

    private final List<Connection> connections;
    private final Collective collective;

    private WorkerGroup(List<Connection> connections, Collective collective) {
        this.connections = connections;
        this.collective = collective;
    }

    public List<Connection> connections() { return connections; }

    /** The group's collective with this process as rank 0: a {@link HostCollective} over TCP or an {@link NcclCollective}. */
    public Collective collective() { return collective; }

    /** "worker HOST:PORT (rank R)", as errors name a worker. */
    public static String name(InetSocketAddress address, int rank) {
        return "worker " + address.getHostString() + ":" + address.getPort() + " (rank " + rank + ")";
    }

    /**
     * Opens every worker's control connection with {@code handshake}, decides the collective ({@code requested}, AUTO
     * resolved from the hello answers), sends each worker the group frame and sets up the collective with this process
     * as rank 0. NCCL is refused here, before any rank joins it, when a rank cannot.
     *
     * @param collectiveListen where rank 0's listener binds; null = an ephemeral port on the first connection's interface
     * @param via              element i is where worker i reaches rank 0's listener (a link emulator); empty = directly
     */
    public static WorkerGroup open(List<InetSocketAddress> workers, Handshake handshake, CollectiveKind requested, Backend backend,
                                   Duration timeout, InetSocketAddress collectiveListen, List<InetSocketAddress> via) throws IOException {
        List<Connection> connections = new ArrayList<>();
        ServerSocket listener = null;
        try {
            for (int i = 0; i < workers.size(); i++) connections.add(connect(workers.get(i), i + 1, handshake, timeout));
            List<CollectiveChoice.Rank> ranks = new ArrayList<>();
            for (Connection c : connections) ranks.add(new CollectiveChoice.Rank(name(c.address(), c.rank()), c.hello().backend(), c.hello().ncclProblem()));
            CollectiveKind kind = CollectiveChoice.resolve(requested,
                    new CollectiveChoice.Rank("rank 0 (this process)", backend.name(), NcclCollective.libraryProblem()), ranks);
            // resolve refuses NCCL unless rank 0 is on CUDA, so the cast holds.
            if (kind == CollectiveKind.NCCL) return new WorkerGroup(connections, openNccl(connections, (CudaBackend) backend, timeout));
            String[] addresses = new String[workers.size() + 1];
            if (CollectiveGroup.needsListener(kind.tcp(), 0, workers.size() + 1)) {
                Socket first = connections.getFirst().socket();
                listener = CollectiveGroup.listen(collectiveListen != null ? collectiveListen : new InetSocketAddress(first.getLocalAddress(), 0));
                addresses[0] = (collectiveListen != null && !collectiveListen.getAddress().isAnyLocalAddress()
                        ? collectiveListen.getAddress() : first.getLocalAddress()).getHostAddress() + ":" + listener.getLocalPort();
            } else {
                addresses[0] = "127.0.0.1:0";
            }
            for (int i = 0; i < connections.size(); i++) {
                Connection c = connections.get(i);
                addresses[i + 1] = c.hello().collective().isEmpty() ? c.address().getHostString() + ":" + c.address().getPort() : c.hello().collective();
            }
            String group = String.join(",", addresses);
            for (int i = 0; i < connections.size(); i++) {
                // Each worker may reach rank 0 by its own route; the rest of the group is the same for all.
                String[] own = addresses.clone();
                if (!via.isEmpty()) own[0] = via.get(i).getHostString() + ":" + via.get(i).getPort();
                TpProtocol.write(connections.get(i).out(), new TpProtocol.Group(String.join(",", own), kind.flagName(), new byte[0]));
            }
            List<InetSocketAddress> parsed = TensorParallelWorker.parseAddresses(group, addresses.length);
            ServerSocket l = listener;
            listener = null;
            AllReduce allReduce = CollectiveGroup.open(kind.tcp(), 0, parsed, l, timeout);
            return new WorkerGroup(connections, new HostCollective(allReduce, backend));
        } catch (IOException | RuntimeException e) {
            if (listener != null) try { listener.close(); } catch (IOException ignored) { /* closing */ }
            for (Connection c : connections) try { c.socket().close(); } catch (IOException ignored) { /* closing */ }
            throw e;
        }
    }

    /**
     * Rank 0 makes the id, sends it to every worker, then joins on its own thread while the workers answer; any worker
     * that could not join is named. On failure rank 0's communicator is aborted (now, or when its init returns).
     */
    private static NcclCollective openNccl(List<Connection> connections, CudaBackend backend, Duration timeout) throws IOException {
        byte[] id = NcclCollective.uniqueId();
        int size = connections.size() + 1;
        for (Connection c : connections) TpProtocol.write(c.out(), new TpProtocol.Group("", "nccl", id));
        NcclJoin mine = new NcclJoin(backend, 0, size, id);
        long deadline = System.nanoTime() + timeout.plus(NCCL_ANSWER_GRACE).toNanos();
        try {
            for (Connection c : connections) {
                String who = name(c.address(), c.rank());
                TpProtocol.Message answer;
                try {
                    c.socket().setSoTimeout((int) Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
                    answer = TpProtocol.read(c.in());
                    c.socket().setSoTimeout(0);
                } catch (SocketTimeoutException e) {
                    throw new IOException(who + " did not join the NCCL group within " + timeout.plus(NCCL_ANSWER_GRACE).toMillis() + " ms");
                }
                if (!(answer instanceof TpProtocol.GroupJoined joined))
                    throw new IOException(who + " answered the NCCL group frame with " + answer.getClass().getSimpleName());
                if (!joined.error().isEmpty()) throw new IOException(who + " could not join the NCCL group: " + joined.error());
            }
            return mine.await(deadline);
        } catch (IOException | RuntimeException e) {
            mine.abandon();
            throw e;
        }
    }

    private static Connection connect(InetSocketAddress address, int rank, Handshake handshake, Duration timeout) throws IOException {
        Socket socket = new Socket();
        try {
            try {
                socket.connect(address, (int) Math.min(timeout.toMillis(), 5000));
            } catch (IOException e) {
                throw new IOException(name(address, rank) + " is unreachable: " + e.getMessage(), e);
            }
            socket.setTcpNoDelay(true);
            DataInputStream in = new DataInputStream(new BufferedInputStream(socket.getInputStream()));
            DataOutputStream out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream()));
            TpProtocol.HelloOk hello;
            try {
                hello = handshake.hello(name(address, rank), rank, in, out);
            } catch (IOException e) {
                String m = String.valueOf(e.getMessage());
                throw m.startsWith(name(address, rank)) ? e : new IOException(name(address, rank) + " is unreachable: " + m, e);
            }
            return new Connection(address, rank, socket, in, out, hello);
        } catch (IOException | RuntimeException e) {
            socket.close();
            throw e;
        }
    }

    /**
     * The first worker that no longer accepts connections, as "worker H:P (rank R) is gone: why", or null. A dying
     * worker's peers can see its links reset before its listener closes, so it looks again briefly.
     */
    public static String culprit(List<InetSocketAddress> workers) {
        for (int round = 0; round < 3; round++) {
            if (round > 0) {
                try { Thread.sleep(150); } catch (InterruptedException ie) { Thread.currentThread().interrupt(); return null; }
            }
            for (int i = 0; i < workers.size(); i++) {
                InetSocketAddress a = workers.get(i);
                try (Socket probe = new Socket()) {
                    probe.connect(a, 500);
                } catch (IOException down) {
                    return name(a, i + 1) + " is gone: " + down.getMessage();
                }
            }
        }
        return null;
    }

    /** A worker's answer to a hello, or an error naming the refusal. */
    public static TpProtocol.HelloOk helloAnswer(String name, TpProtocol.Message reply) throws IOException {
        if (reply instanceof TpProtocol.HelloError err) throw new IOException(name + " refused: " + err.message());
        if (!(reply instanceof TpProtocol.HelloOk ok)) throw new IOException(name + " answered the hello with " + reply.getClass().getSimpleName());
        return ok;
    }

    /**
     * After a failed step: closes {@code group} (null: none) and says what happened in one line, naming the worker that
     * went away when one can be found. {@code exchange} names the collective's work ("allreduce", "expert exchange").
     */
    public static String failure(WorkerGroup group, List<InetSocketAddress> workers, Exception e, String exchange) {
        if (group != null) group.abort(e.getMessage());
        String culprit = culprit(workers);
        String what = e instanceof dev.tessera.kernels.collective.CollectiveException ? exchange + " failed" : "control connection failed";
        return (culprit != null ? culprit + "; " : "") + what + ": " + e.getMessage();
    }

    /** Tells every worker the session is over, then closes. */
    public void shutdown() {
        for (Connection c : connections) {
            try { TpProtocol.write(c.out(), new TpProtocol.Shutdown()); } catch (IOException ignored) { /* leaving anyway */ }
        }
        close();
    }

    /**
     * Closes after a failure. An NCCL communicator is aborted, not destroyed: a peer that went away leaves work on the
     * stream that would never complete.
     */
    void abort(String why) {
        if (collective instanceof NcclCollective nccl) nccl.abort(String.valueOf(why));
        close();
    }

    @Override
    public void close() {
        collective.close();
        for (Connection c : connections) {
            try { c.socket().close(); } catch (IOException ignored) { /* already gone */ }
        }
    }
}
