package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.collective.AllReduce;
import dev.tessera.kernels.collective.AllReduceKind;
import dev.tessera.kernels.collective.CollectiveGroup;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufException;
import dev.tessera.models.gguf.GgufFile;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;

/**
 * A tensor-parallel worker process: listens for a master, proves it holds the shard the master expects (source
 * model fingerprint, plan, rank), joins the allreduce group, then runs its share of every layer in lockstep with the
 * master, step by step, until the master goes away. One master at a time; after a session ends (cleanly or not)
 * it accepts the next, so a restarted master — or this worker, restarted — simply reconnects.
 */
public final class TensorParallelWorker implements AutoCloseable {
    private final ServerSocket control;
    private final Path shardDir;
    private final int window;
    private final IntFunction<Backend> backends;
    private final PrintStream log;
    private final Duration timeout;
    private final boolean receiveShards;
    private volatile boolean closed;

    /** @param backends makes a compute backend for a session (argument: unused, 0) */
    public TensorParallelWorker(InetSocketAddress listen, Path shardDir, int window, IntFunction<Backend> backends,
                                Duration timeout, PrintStream log) {
        this(listen, shardDir, window, backends, timeout, log, false);
    }

    /**
     * @param receiveShards when no shard in shardDir matches a master's hello, ask the master to stream it (written to
     *                      shardDir, checked by SHA-256 and then by its metadata) instead of refusing
     */
    public TensorParallelWorker(InetSocketAddress listen, Path shardDir, int window, IntFunction<Backend> backends,
                                Duration timeout, PrintStream log, boolean receiveShards) {
        this.receiveShards = receiveShards;
        this.control = CollectiveGroup.listen(listen);
        this.shardDir = shardDir;
        this.window = window;
        this.backends = backends;
        this.timeout = timeout;
        this.log = log;
    }

    public int port() { return control.getLocalPort(); }

    /** Serves masters one after another until closed. */
    public void serve() {
        log.println("tessera worker: listening on " + control.getLocalSocketAddress() + ", shards in " + shardDir
                + ", memory window " + (window == 0 ? "off (all blocks resident)" : window + " blocks"));
        while (!closed) {
            Socket socket;
            try {
                socket = control.accept();
            } catch (IOException e) {
                if (closed) return;
                log.println("tessera worker: accept failed: " + e.getMessage());
                continue;
            }
            try (socket) {
                session(socket);
            } catch (EOFException e) {
                log.println("tessera worker: master " + socket.getRemoteSocketAddress() + " disconnected");
            } catch (IOException | RuntimeException e) {
                log.println("tessera worker: session with " + socket.getRemoteSocketAddress() + " ended: " + e.getMessage());
            }
        }
    }

    private void session(Socket socket) throws IOException {
        socket.setTcpNoDelay(true);
        DataInputStream in = new DataInputStream(new BufferedInputStream(socket.getInputStream()));
        DataOutputStream out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream()));
        if (!(TpProtocol.read(in) instanceof TpProtocol.Hello hello)) throw new TpProtocol.ProtocolException("expected a hello frame first");
        AllReduceKind kind;
        try {
            kind = AllReduceKind.parse(hello.allReduce());
        } catch (IllegalArgumentException e) {
            TpProtocol.write(out, new TpProtocol.HelloError(e.getMessage()));
            return;
        }
        Path shardPath;
        try {
            try {
                shardPath = findShard(hello);
            } catch (IllegalStateException e) {
                if (!receiveShards) throw e;
                log.println("tessera worker: no shard for rank " + hello.rank() + " of model " + hello.fingerprint().substring(0, Math.min(12, hello.fingerprint().length()))
                        + "; asking master " + socket.getRemoteSocketAddress() + " to send it");
                TpProtocol.write(out, new TpProtocol.NeedShard(e.getMessage()));
                ShardReceiver.receive(in, shardDir, log);
                shardPath = findShard(hello);
            }
        } catch (IllegalStateException | GgufException e) {
            log.println("tessera worker: refused master " + socket.getRemoteSocketAddress() + ": " + e.getMessage());
            TpProtocol.write(out, new TpProtocol.HelloError(e.getMessage()));
            return;
        }
        try (GgufFile shard = GgufFile.open(shardPath);
             Backend backend = backends.apply(0)) {
            ModelConfig config = ShardWriter.config(shard);
            ShardPlan plan = ShardWriter.plan(shard, config);
            ServerSocket listener = CollectiveGroup.needsListener(kind, hello.rank(), hello.numDevices())
                    ? CollectiveGroup.listen(new InetSocketAddress(socket.getLocalAddress(), 0)) : null;
            String mine = listener == null ? "" : socket.getLocalAddress().getHostAddress() + ":" + listener.getLocalPort();
            DeviceShard device;
            try {
                device = new DeviceShard(config, plan, hello.rank(), shard, true, backend, window, hello.maxBatchTokens());
            } catch (RuntimeException e) {
                if (listener != null) listener.close();
                TpProtocol.write(out, new TpProtocol.HelloError(shardPath.getFileName() + ": " + e.getMessage()));
                throw e;
            }
            try (device) {
                TpProtocol.write(out, new TpProtocol.HelloOk(mine));
                if (!(TpProtocol.read(in) instanceof TpProtocol.Group group)) {
                    if (listener != null) listener.close();
                    throw new TpProtocol.ProtocolException("expected the group frame after hello");
                }
                List<InetSocketAddress> addresses = parseAddresses(group.addresses(), hello.numDevices());
                log.println("tessera worker: rank " + hello.rank() + " of " + hello.numDevices() + " with " + shardPath.getFileName()
                        + " (" + plan.numHeads(hello.rank()) + " heads, " + plan.ffnColumns(hello.rank()) + " FFN columns), " + kind.flagName() + " allreduce");
                try (AllReduce allReduce = CollectiveGroup.open(kind, hello.rank(), addresses, listener, timeout)) {
                    steps(in, out, device, config, allReduce);
                }
                log.println("tessera worker: " + device.stats().summary("rank " + hello.rank()));
            }
        }
    }

    /** The lockstep loop: every Step is one forward pass of every layer over the step's rows. */
    private void steps(DataInputStream in, DataOutputStream out, DeviceShard device, ModelConfig config, AllReduce allReduce) throws IOException {
        float[] hidden = new float[0];
        while (true) {
            TpProtocol.Message m = TpProtocol.read(in);
            switch (m) {
                case TpProtocol.Begin b -> device.beginSequence(b.capacity());
                case TpProtocol.Step s -> {
                    int width = s.numTokens() * config.dim();
                    if (hidden.length < width) hidden = new float[width];
                    // The master broadcasts the embedded rows as an allreduce in which every worker adds zeros.
                    java.util.Arrays.fill(hidden, 0, width, 0f);
                    allReduce.sum(hidden, 0, width);
                    device.layers(hidden, s.numTokens(), s.startPosition(), allReduce);
                }
                case TpProtocol.End e -> device.endSequence();
                case TpProtocol.StatsRequest r -> TpProtocol.write(out, new TpProtocol.StatsReply(
                        device.stats().summary("rank " + device.rank()), device.window().window(), device.window().peakResidentBlocks()));
                case TpProtocol.Shutdown s -> { return; }
                default -> throw new TpProtocol.ProtocolException("unexpected " + m.getClass().getSimpleName() + " frame during a session");
            }
        }
    }

    /** The shard in shardDir made from the master's model with the master's plan for this rank. */
    private Path findShard(TpProtocol.Hello hello) {
        List<String> seen = new ArrayList<>();
        try (DirectoryStream<Path> dir = Files.newDirectoryStream(shardDir, "*.gguf")) {
            for (Path p : dir) {
                try (GgufFile f = GgufFile.open(p)) {
                    if (!f.getString("general.architecture", "").equals("tessera-tp-shard")) continue;
                    String fp = ShardWriter.fingerprint(f);
                    int rank = ShardWriter.rank(f);
                    String plan = f.getString(ShardWriter.PREFIX + "plan", "");
                    if (fp.equals(hello.fingerprint()) && rank == hello.rank() && plan.equals(hello.plan())) return p;
                    seen.add(p.getFileName() + " (model " + fp.substring(0, Math.min(12, fp.length())) + ", rank " + rank + ")");
                } catch (GgufException e) {
                    seen.add(p.getFileName() + " (unreadable)");
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot list shard directory " + shardDir + ": " + e.getMessage());
        }
        throw new IllegalStateException("no shard in " + shardDir + " for model " + hello.fingerprint().substring(0, Math.min(12, hello.fingerprint().length()))
                + ", rank " + hello.rank() + ", plan " + hello.plan() + "; found " + (seen.isEmpty() ? "none" : String.join(", ", seen))
                + "; run 'tessera shard' with the master's model and --tp-weights");
    }

    static List<InetSocketAddress> parseAddresses(String s, int expected) throws TpProtocol.ProtocolException {
        String[] parts = s.split(",");
        if (parts.length != expected) throw new TpProtocol.ProtocolException("group of " + parts.length + " addresses, expected " + expected);
        List<InetSocketAddress> out = new ArrayList<>();
        for (String p : parts) out.add(parseAddress(p));
        return out;
    }

    /** HOST:PORT, or [v6]:PORT. */
    public static InetSocketAddress parseAddress(String s) throws TpProtocol.ProtocolException {
        int colon = s.lastIndexOf(':');
        if (colon <= 0) throw new TpProtocol.ProtocolException("address '" + s + "' is not HOST:PORT");
        String host = s.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) host = host.substring(1, host.length() - 1);
        int port;
        try {
            port = Integer.parseInt(s.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new TpProtocol.ProtocolException("address '" + s + "' has no numeric port");
        }
        if (port < 0 || port > 65535) throw new TpProtocol.ProtocolException("address '" + s + "' has port outside 0..65535");
        return new InetSocketAddress(host, port);
    }

    @Override
    public void close() {
        closed = true;
        try {
            control.close();
        } catch (IOException ignored) {
            // Closing a listening socket only stops accept.
        }
    }
}
