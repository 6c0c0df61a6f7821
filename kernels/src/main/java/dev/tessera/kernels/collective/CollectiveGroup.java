package dev.tessera.kernels.collective;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Connects the ranks of an allreduce group over TCP.
 *
 * <p>{@code addresses.get(r)} is where this rank reaches rank r. Usually that is the address rank r listens on; with
 * a {@link LinkEmulator} in between it is the emulator's, so each rank may be given its own list. Who connects:
 * <ul>
 *   <li>star: rank 0 listens; each worker connects to {@code addresses.get(0)};</li>
 *   <li>ring: every rank listens; rank r connects to {@code addresses.get((r + 1) % size)} and accepts rank r-1.</li>
 * </ul>
 * Both sides of a connection exchange a HELLO (rank, size, algorithm), so a wrongly wired group fails at set-up with
 * a message naming the peer. Connecting retries until the timeout, so ranks may start in any order.
 */
public final class CollectiveGroup {
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(30);

    private CollectiveGroup() {}

    /** The group of one rank: sums return at once. */
    public static AllReduce single() {
        return new StarAllReduce(0, 1, List.of());
    }

    /** Whether {@code rank} must listen: every ring rank, and rank 0 of a star. */
    public static boolean needsListener(AllReduceKind kind, int rank, int size) {
        return size > 1 && (kind == AllReduceKind.RING || rank == 0);
    }

    /** Binds a listening socket (port 0 picks a free one). */
    public static ServerSocket listen(InetSocketAddress address) {
        try {
            ServerSocket server = new ServerSocket();
            server.setReuseAddress(true);
            server.bind(address, 64);
            return server;
        } catch (IOException e) {
            throw new CollectiveException("cannot listen on " + address + ": " + e.getMessage(), e);
        }
    }

    /** Binds {@code addresses.get(rank)} itself when this rank needs to listen, then connects the group. */
    public static AllReduce open(AllReduceKind kind, int rank, List<InetSocketAddress> addresses, Duration timeout) {
        ServerSocket listener = needsListener(kind, rank, addresses.size()) ? listen(addresses.get(rank)) : null;
        return open(kind, rank, addresses, listener, timeout);
    }

    /**
     * Connects the group, blocking until every link of this rank is up and introduced, or the timeout passes.
     * Takes ownership of {@code listener} (may be null when {@link #needsListener} is false) and closes it once the
     * expected peers are accepted.
     */
    public static AllReduce open(AllReduceKind kind, int rank, List<InetSocketAddress> addresses, ServerSocket listener,
                                 Duration timeout) {
        int size = addresses.size();
        if (rank < 0 || rank >= size) throw new IllegalArgumentException("rank " + rank + " outside a group of " + size);
        if (needsListener(kind, rank, size) && listener == null) {
            throw new IllegalArgumentException(kind.flagName() + " rank " + rank + " needs a listening socket");
        }
        long timeoutMillis = timeout.toMillis();
        long deadline = System.nanoTime() + timeout.toNanos();
        List<PeerLink> opened = new ArrayList<>();
        try (listener) {
            if (size == 1) return new StarAllReduce(0, 1, List.of());
            return switch (kind) {
                case STAR -> rank == 0
                        ? new StarAllReduce(0, size, acceptWorkers(listener, size, timeoutMillis, deadline, opened))
                        : new StarAllReduce(rank, size, List.of(connectAndIntroduce(kind, rank, size, 0, addresses.get(0),
                                timeoutMillis, deadline, opened)));
                case RING -> {
                    int nextRank = (rank + 1) % size;
                    int previousRank = (rank + size - 1) % size;
                    PeerLink next = connect(rank, nextRank, addresses.get(nextRank), timeoutMillis, deadline, opened);
                    next.awaitSent(next.sendHelloAsync(size, kind), "connection set-up");
                    PeerLink previous = accept(listener, rank, previousRank, timeoutMillis, deadline, opened);
                    previous.receiveHello(size, kind);
                    previous.awaitSent(previous.sendHelloAsync(size, kind), "connection set-up");
                    next.receiveHello(size, kind);
                    yield new RingAllReduce(rank, size, next, previous);
                }
            };
        } catch (IOException e) {
            for (PeerLink link : opened) link.close();
            throw new CollectiveException("rank " + rank + ": connection set-up failed: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            for (PeerLink link : opened) link.close();
            throw e;
        }
    }

    private static List<PeerLink> acceptWorkers(ServerSocket listener, int size, long timeoutMillis, long deadline,
                                                List<PeerLink> opened) throws IOException {
        PeerLink[] byRank = new PeerLink[size];
        for (int i = 1; i < size; i++) {
            PeerLink link = accept(listener, 0, -1, timeoutMillis, deadline, opened);
            int rank = link.receiveHelloFromAnyWorker(size, AllReduceKind.STAR);
            if (byRank[rank] != null) throw new CollectiveException(link.peerName() + " connected twice to rank 0");
            byRank[rank] = link;
            link.awaitSent(link.sendHelloAsync(size, AllReduceKind.STAR), "connection set-up");
        }
        List<PeerLink> links = new ArrayList<>();
        for (int r = 1; r < size; r++) links.add(byRank[r]);
        return links;
    }

    private static PeerLink connectAndIntroduce(AllReduceKind kind, int rank, int size, int peerRank, InetSocketAddress address,
                                                long timeoutMillis, long deadline, List<PeerLink> opened) throws IOException {
        PeerLink link = connect(rank, peerRank, address, timeoutMillis, deadline, opened);
        link.awaitSent(link.sendHelloAsync(size, kind), "connection set-up");
        link.receiveHello(size, kind);
        return link;
    }

    private static PeerLink accept(ServerSocket listener, int rank, int peerRank, long timeoutMillis, long deadline,
                                   List<PeerLink> opened) throws IOException {
        long left = Math.max(1, (deadline - System.nanoTime()) / 1_000_000);
        listener.setSoTimeout((int) Math.min(Integer.MAX_VALUE, left));
        Socket socket;
        try {
            socket = listener.accept();
        } catch (SocketTimeoutException e) {
            throw new CollectiveException("rank " + rank + " listening on " + listener.getLocalSocketAddress() + ": "
                    + (peerRank < 0 ? "a worker" : "rank " + peerRank) + " did not connect within " + timeoutMillis + " ms");
        }
        PeerLink link = new PeerLink(socket, rank, peerRank, timeoutMillis);
        opened.add(link);
        return link;
    }

    /** Connects, retrying refused connections (the peer may not listen yet) until the deadline. */
    private static PeerLink connect(int rank, int peerRank, InetSocketAddress address, long timeoutMillis, long deadline,
                                    List<PeerLink> opened) throws IOException {
        IOException last;
        do {
            Socket socket = new Socket();
            try {
                long left = Math.max(1, (deadline - System.nanoTime()) / 1_000_000);
                socket.connect(address, (int) Math.min(Integer.MAX_VALUE, left));
                PeerLink link = new PeerLink(socket, rank, peerRank, timeoutMillis);
                opened.add(link);
                return link;
            } catch (IOException e) {
                socket.close();
                last = e;
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CollectiveException("rank " + rank + ": interrupted while connecting to rank " + peerRank, e);
            }
        } while (System.nanoTime() < deadline);
        throw new CollectiveException("rank " + rank + ": could not connect to rank " + peerRank + " at "
                + address.getHostString() + ":" + address.getPort() + " within " + timeoutMillis + " ms: " + last.getMessage());
    }

    /**
     * A whole group inside this JVM, one thread per rank during set-up, on loopback ports chosen by the OS; element r
     * of the result is rank r. For tests and single-host runs.
     */
    public static List<AllReduce> openLocal(AllReduceKind kind, int size, Duration timeout) {
        InetAddress loopback = InetAddress.getLoopbackAddress();
        List<ServerSocket> listeners = new ArrayList<>();
        List<InetSocketAddress> addresses = new ArrayList<>();
        for (int r = 0; r < size; r++) {
            ServerSocket listener = needsListener(kind, r, size) ? listen(new InetSocketAddress(loopback, 0)) : null;
            listeners.add(listener);
            addresses.add(new InetSocketAddress(loopback, listener == null ? 0 : listener.getLocalPort()));
        }
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<AllReduce>> futures = new ArrayList<>();
            for (int r = 0; r < size; r++) {
                int rank = r;
                futures.add(pool.submit(() -> open(kind, rank, addresses, listeners.get(rank), timeout)));
            }
            List<AllReduce> group = new ArrayList<>();
            CollectiveException failure = null;
            for (Future<AllReduce> f : futures) {
                try {
                    group.add(f.get());
                } catch (ExecutionException e) {
                    if (failure == null) failure = e.getCause() instanceof CollectiveException c ? c
                            : new CollectiveException("local group set-up failed: " + e.getCause(), e.getCause());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new CollectiveException("interrupted while setting up a local group", e);
                }
            }
            if (failure != null) {
                for (AllReduce a : group) a.close();
                throw failure;
            }
            return group;
        }
    }
}
