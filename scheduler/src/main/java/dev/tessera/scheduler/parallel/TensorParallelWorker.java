package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.collective.Collective;
import dev.tessera.kernels.collective.CollectiveKind;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.scheduler.worker.StepInputs;
import dev.tessera.models.gguf.GgufException;
import dev.tessera.models.gguf.GgufFile;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
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
 * model fingerprint, plan, rank), joins the allreduce group, sets up paged KV memory for its KV heads under the
 * master's block ids, then runs its share of every layer of each engine step — the same {@link LlamaModel} graph as
 * the master's, over its shard — in lockstep with the master, until the master goes away. One master at a time
 * ({@link SessionServer}). The group's collective is TCP or NCCL ({@link WorkerCollective}), as the master's group
 * frame says.
 */
public final class TensorParallelWorker implements AutoCloseable {
    private final SessionServer control;
    private final Path shardDir;
    private final int window;
    private final IntFunction<Backend> backends;
    private final PrintStream log;
    private final Duration timeout;
    private final boolean receiveShards;

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
        this.control = new SessionServer(listen, "tessera worker", log);
        this.shardDir = shardDir;
        this.window = window;
        this.backends = backends;
        this.timeout = timeout;
        this.log = log;
    }

    public int port() { return control.port(); }

    /** Serves masters one after another until closed. */
    public void serve() {
        log.println("tessera worker: listening on " + control.address() + ", shards in " + shardDir
                + ", memory window " + (window == 0 ? "off (all blocks resident)" : window + " blocks"));
        control.serve(this::session);
    }

    private void session(Socket socket) throws IOException {
        socket.setTcpNoDelay(true);
        DataInputStream in = new DataInputStream(new BufferedInputStream(socket.getInputStream()));
        DataOutputStream out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream()));
        if (!(TpProtocol.read(in) instanceof TpProtocol.Hello hello)) throw new TpProtocol.ProtocolException("expected a hello frame first");
        CollectiveKind kind;
        KvCacheType kvType;
        try {
            kind = CollectiveKind.parse(hello.allReduce());
            kvType = KvCacheType.parse(hello.kvCacheType());
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
            ServerSocket listener = WorkerCollective.listener(kind, hello.rank(), hello.numDevices(), socket);
            ShardWeights weights;
            try {
                weights = new ShardWeights(config, plan, hello.rank(), shard, true, backend, window);
            } catch (RuntimeException e) {
                if (listener != null) listener.close();
                TpProtocol.write(out, new TpProtocol.HelloError(shardPath.getFileName() + ": " + e.getMessage()));
                throw e;
            }
            try (weights) {
                TpProtocol.write(out, WorkerCollective.helloOk(listener, socket, backend));
                if (!(TpProtocol.read(in) instanceof TpProtocol.Group group)) {
                    if (listener != null) listener.close();
                    throw new TpProtocol.ProtocolException("expected the group frame after hello");
                }
                log.println("tessera worker: rank " + hello.rank() + " of " + hello.numDevices() + " with " + shardPath.getFileName()
                        + " (" + plan.numHeads(hello.rank()) + " heads, " + plan.ffnColumns(hello.rank()) + " FFN columns), " + group.collective()
                        + " allreduce, " + hello.numKvBlocks() + " KV blocks of " + hello.kvBlockSize() + " (" + hello.kvCacheType() + ") on " + backend.name());
                try (Collective collective = WorkerCollective.join(group, kind, hello.rank(), hello.numDevices(), listener, backend, timeout, out)) {
                    LlamaModel model = new LlamaModel(config, weights.shape(), weights, null, backend, collective, hello.maxBatchTokens(), 1);
                    StepInputs inputs = new StepInputs(model.newKvBlockStore(hello.kvBlockSize(), hello.numKvBlocks(), kvType));
                    try {
                        steps(in, out, model, inputs, weights);
                    } finally {
                        inputs.clear();
                        inputs.store().close();
                    }
                }
                log.println("tessera worker: " + weights.stats().summary("rank " + hello.rank()));
            }
        }
    }

    private static final int[] NO_ROWS = {};

    /** The lockstep loop: every Step is one forward pass of every layer over the step's rows. */
    private void steps(DataInputStream in, DataOutputStream out, LlamaModel model, StepInputs inputs, ShardWeights weights) throws IOException {
        while (true) {
            TpProtocol.Message m = TpProtocol.read(in);
            switch (m) {
                case TpProtocol.Step s -> {
                    if (s.output().numTokens() > model.maxBatchTokens())
                        throw new TpProtocol.ProtocolException("step of " + s.output().numTokens() + " rows, limit " + model.maxBatchTokens());
                    StepInputs.Rows rows;
                    try {
                        rows = inputs.apply(s.output());
                    } catch (IllegalArgumentException e) {
                        throw new TpProtocol.ProtocolException("bad step: " + e.getMessage());
                    }
                    model.forward(rows.tokens(), rows.batch(), NO_ROWS, null);
                }
                case TpProtocol.StatsRequest r -> TpProtocol.write(out, new TpProtocol.StatsReply(
                        weights.stats().summary("rank " + weights.rank()), weights.window().window(), weights.window().peakResidentBlocks()));
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

    public static List<InetSocketAddress> parseAddresses(String s, int expected) throws TpProtocol.ProtocolException {
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
        control.close();
    }
}
