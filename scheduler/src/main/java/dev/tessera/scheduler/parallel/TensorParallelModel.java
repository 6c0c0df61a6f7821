package dev.tessera.scheduler.parallel;

import dev.tessera.scheduler.engine.DeviceUnavailableException;
import dev.tessera.scheduler.engine.SequenceModel;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.Weight;
import dev.tessera.kernels.collective.AllReduce;
import dev.tessera.kernels.collective.AllReduceKind;
import dev.tessera.kernels.collective.CollectiveException;
import dev.tessera.kernels.collective.CollectiveGroup;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufTensorInfo;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The master (rank 0) of tensor-parallel inference: keeps the embeddings, final norm and output head (so token ids
 * and text never leave this process), takes its own share of every layer, and drives the workers step by step.
 * Connects lazily: the first sequence (and the first after a failure) sets up the group; while a worker is down
 * every sequence fails fast naming it, and once it is back the next one reconnects.
 */
public final class TensorParallelModel implements SequenceModel, AutoCloseable {
    /** A failed tensor-parallel request; the message is one line naming the worker when one is to blame. */
    public static final class TensorParallelException extends DeviceUnavailableException {
        public TensorParallelException(String message, Throwable cause) { super(message, cause); }
    }

    private final GgufFile file;
    private final ModelConfig config;
    private final Backend backend;
    private final List<InetSocketAddress> workers;
    private final ShardPlan plan;
    private final AllReduceKind kind;
    private final int window;
    private final int maxBatchTokens;
    private final Duration timeout;
    private final String fingerprint;
    private final InetSocketAddress collectiveListen;
    private final List<InetSocketAddress> masterAddressPerWorker;
    private final Weight embeddings, outputNorm, output;
    private final Activations xb, normed, logits;
    private Session session;

    private record Connection(InetSocketAddress address, int rank, Socket socket, DataInputStream in, DataOutputStream out, String collective) {}

    private record Session(List<Connection> connections, AllReduce allReduce, DeviceShard shard) implements AutoCloseable {
        @Override
        public void close() {
            allReduce.close();
            for (Connection c : connections) {
                try { c.socket().close(); } catch (IOException ignored) { /* already gone */ }
            }
            shard.close();
        }
    }

    /**
     * @param workers ranks 1..N-1 in order; plan.numDevices() must be workers.size() + 1
     * @param window memory window of the master's own share (0 = all resident)
     */
    public TensorParallelModel(GgufFile file, ModelConfig config, Backend backend, List<InetSocketAddress> workers,
                               ShardPlan plan, AllReduceKind kind, int window, int maxBatchTokens, Duration timeout) {
        this(file, config, backend, workers, plan, kind, window, maxBatchTokens, timeout, null, List.of());
    }

    /**
     * As above, with the allreduce links of rank 0 routed explicitly, so that each can pass through its own proxy
     * (a {@link dev.tessera.kernels.collective.LinkEmulator} in benchmarks, a NAT or tunnel in the field).
     *
     * @param collectiveListen where rank 0's allreduce listener binds (a fixed port a proxy can forward to); null = an
     *                         ephemeral port on the interface of the first control connection
     * @param masterAddressPerWorker element i is where worker rank i+1 reaches rank 0's allreduce listener; empty =
     *                         every worker uses the listener's own address
     */
    public TensorParallelModel(GgufFile file, ModelConfig config, Backend backend, List<InetSocketAddress> workers,
                               ShardPlan plan, AllReduceKind kind, int window, int maxBatchTokens, Duration timeout,
                               InetSocketAddress collectiveListen, List<InetSocketAddress> masterAddressPerWorker) {
        if (!masterAddressPerWorker.isEmpty() && masterAddressPerWorker.size() != workers.size())
            throw new IllegalArgumentException(masterAddressPerWorker.size() + " rank-0 allreduce addresses for " + workers.size() + " workers (one per worker, in order)");
        this.collectiveListen = collectiveListen;
        this.masterAddressPerWorker = List.copyOf(masterAddressPerWorker);
        if (plan.numDevices() != workers.size() + 1)
            throw new IllegalArgumentException(plan.numDevices() + " device weights for " + (workers.size() + 1) + " devices (the master and " + workers.size() + " workers)");
        this.file = file;
        this.config = config;
        this.backend = backend;
        this.workers = List.copyOf(workers);
        this.plan = plan;
        this.kind = kind;
        this.window = window;
        this.maxBatchTokens = maxBatchTokens;
        this.timeout = timeout;
        this.fingerprint = ShardWriter.fingerprint(file.path());
        embeddings = weight("token_embd.weight", config.vocabSize(), config.dim());
        outputNorm = weight("output_norm.weight", 1, config.dim());
        output = file.tensor("output.weight") != null ? weight("output.weight", config.vocabSize(), config.dim()) : embeddings;
        xb = backend.allocate(maxBatchTokens, config.dim());
        normed = backend.allocate(1, config.dim());
        logits = backend.allocate(1, config.vocabSize());
    }

    /** A plan proportional to weights, split at the block sizes of the model's attn_output and ffn_down. */
    public static ShardPlan plan(GgufFile file, ModelConfig config, int[] weights) {
        GgufTensorInfo down = file.tensor("blk.0.ffn_down.weight"), wo = file.tensor("blk.0.attn_output.weight");
        if (down == null || wo == null) throw file.fail("missing tensor blk.0.ffn_down.weight or blk.0.attn_output.weight");
        return ShardPlan.of(config, weights, down.type().blockSize, wo.type().blockSize);
    }

    private Weight weight(String name, int rows, int cols) {
        GgufTensorInfo t = file.tensor(name);
        if (t == null) throw file.fail("missing tensor " + name);
        return backend.weight(name, t.type(), file.data(t), rows, cols);
    }

    @Override
    public ModelConfig config() { return config; }

    @Override
    public int maxBatchTokens() { return maxBatchTokens; }

    public ShardPlan shardPlan() { return plan; }

    public String fingerprint() { return fingerprint; }

    /** A sequence over every device; closing it ends the sequence everywhere. One sequence at a time. */
    @Override
    public Sequence begin(int capacity) {
        beginSequence(capacity);
        return new Sequence() {
            @Override
            public void forward(int[] tokens, int n, int start, float[] logitsOut) {
                TensorParallelModel.this.forward(tokens, n, start, logitsOut);
            }

            @Override
            public void close() {
                endSequence();
            }
        };
    }

    /** Starts a sequence on every device, connecting the group first if it is not up. */
    public void beginSequence(int capacity) {
        Session s = connect();
        try {
            for (Connection c : s.connections()) TpProtocol.write(c.out(), new TpProtocol.Begin(capacity));
            s.shard().beginSequence(capacity);
        } catch (IOException | RuntimeException e) {
            throw fail(e);
        }
    }

    public void endSequence() {
        Session s = session;
        if (s == null) return;
        try {
            for (Connection c : s.connections()) TpProtocol.write(c.out(), new TpProtocol.End());
            s.shard().endSequence();
        } catch (IOException | RuntimeException e) {
            throw fail(e);
        }
    }

    /**
     * Runs n rows (positions start..start+n-1 of the current sequence) through every layer on every device and, when
     * {@code logitsOut} is not null, writes the logits of the last row into it.
     */
    public void forward(int[] tokens, int n, int start, float[] logitsOut) {
        Session s = session;
        if (s == null) throw new IllegalStateException("no sequence begun");
        if (n < 1 || n > maxBatchTokens) throw new IllegalArgumentException("batch of " + n + " tokens, limit " + maxBatchTokens);
        int dim = config.dim();
        float[] hidden = new float[n * dim];
        try {
            for (Connection c : s.connections()) TpProtocol.write(c.out(), new TpProtocol.Step(n, start));
            backend.embed(embeddings, tokens, n, xb);
            backend.download(xb, hidden, n);
            s.allReduce().sum(hidden, 0, n * dim);
            s.shard().layers(hidden, n, start, s.allReduce());
        } catch (IOException | RuntimeException e) {
            throw fail(e);
        }
        if (logitsOut == null) return;
        float[] last = new float[dim];
        System.arraycopy(hidden, (n - 1) * dim, last, 0, dim);
        backend.upload(last, xb, 1);
        backend.rmsNorm(xb, outputNorm, config.rmsNormEps(), 1, normed);
        backend.matmul(output, normed, 1, logits);
        backend.download(logits, logitsOut, 1);
    }

    /** One summary line per device (master first), and the most blocks each had resident. */
    public List<TpProtocol.StatsReply> stats() {
        Session s = session;
        List<TpProtocol.StatsReply> out = new ArrayList<>();
        if (s == null) return out;
        out.add(new TpProtocol.StatsReply(s.shard().stats().summary("rank 0 (master)"), s.shard().window().window(), s.shard().window().peakResidentBlocks()));
        try {
            for (Connection c : s.connections()) {
                TpProtocol.write(c.out(), new TpProtocol.StatsRequest());
                if (!(TpProtocol.read(c.in()) instanceof TpProtocol.StatsReply r)) throw new TpProtocol.ProtocolException("expected a stats reply");
                out.add(new TpProtocol.StatsReply("worker " + c.address().getHostString() + ":" + c.address().getPort() + " " + r.summary(), r.window(), r.peakResidentBlocks()));
            }
        } catch (IOException | RuntimeException e) {
            throw fail(e);
        }
        return out;
    }

    private Session connect() {
        if (session != null) return session;
        List<Connection> connections = new ArrayList<>();
        ServerSocket listener = null;
        try {
            for (int i = 0; i < workers.size(); i++) connections.add(hello(workers.get(i), i + 1));
            String[] addresses = new String[workers.size() + 1];
            if (CollectiveGroup.needsListener(kind, 0, workers.size() + 1)) {
                Socket first = connections.getFirst().socket();
                listener = CollectiveGroup.listen(collectiveListen != null ? collectiveListen : new InetSocketAddress(first.getLocalAddress(), 0));
                addresses[0] = (collectiveListen != null && !collectiveListen.getAddress().isAnyLocalAddress()
                        ? collectiveListen.getAddress() : first.getLocalAddress()).getHostAddress() + ":" + listener.getLocalPort();
            } else {
                addresses[0] = "127.0.0.1:0";
            }
            for (int i = 0; i < connections.size(); i++) {
                Connection c = connections.get(i);
                addresses[i + 1] = c.collective().isEmpty() ? c.address().getHostString() + ":" + c.address().getPort() : c.collective();
            }
            String group = String.join(",", addresses);
            for (int i = 0; i < connections.size(); i++) {
                // Each worker may reach rank 0 by its own route; the rest of the group is the same for all.
                String[] own = addresses.clone();
                if (!masterAddressPerWorker.isEmpty()) {
                    InetSocketAddress via = masterAddressPerWorker.get(i);
                    own[0] = via.getHostString() + ":" + via.getPort();
                }
                TpProtocol.write(connections.get(i).out(), new TpProtocol.Group(String.join(",", own)));
            }
            List<InetSocketAddress> parsed = TensorParallelWorker.parseAddresses(group, addresses.length);
            ServerSocket l = listener;
            listener = null;
            AllReduce allReduce = CollectiveGroup.open(kind, 0, parsed, l, timeout);
            DeviceShard shard;
            try {
                shard = new DeviceShard(config, plan, 0, file, false, backend, window, maxBatchTokens);
            } catch (RuntimeException e) {
                allReduce.close();
                throw e;
            }
            session = new Session(connections, allReduce, shard);
            return session;
        } catch (IOException | RuntimeException e) {
            if (listener != null) try { listener.close(); } catch (IOException ignored) { /* closing */ }
            for (Connection c : connections) try { c.socket().close(); } catch (IOException ignored) { /* closing */ }
            if (e instanceof TensorParallelException tp) throw tp;
            throw new TensorParallelException("tensor-parallel set-up failed: " + e.getMessage(), e);
        }
    }

    /** Opens the control connection of one worker and sends its hello; a refusal is an error naming the worker. */
    private Connection hello(InetSocketAddress address, int rank) {
        String name = "worker " + address.getHostString() + ":" + address.getPort() + " (rank " + rank + ")";
        try {
            Socket socket = new Socket();
            socket.connect(address, (int) Math.min(timeout.toMillis(), 5000));
            socket.setTcpNoDelay(true);
            DataInputStream in = new DataInputStream(new BufferedInputStream(socket.getInputStream()));
            DataOutputStream out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream()));
            TpProtocol.write(out, new TpProtocol.Hello(TpProtocol.VERSION, rank, workers.size() + 1, fingerprint, plan.describe(), kind.flagName(), maxBatchTokens));
            TpProtocol.Message reply = TpProtocol.read(in);
            if (reply instanceof TpProtocol.NeedShard) {
                ShardSender.send(file, config, plan, rank, fingerprint, out, name, System.err);
                reply = TpProtocol.read(in);
            }
            if (reply instanceof TpProtocol.HelloError err) {
                socket.close();
                throw new TensorParallelException(name + " refused: " + err.message(), null);
            }
            if (!(reply instanceof TpProtocol.HelloOk ok)) {
                socket.close();
                throw new TensorParallelException(name + " answered the hello with " + reply.getClass().getSimpleName(), null);
            }
            return new Connection(address, rank, socket, in, out, ok.collective());
        } catch (IOException e) {
            throw new TensorParallelException(name + " is unreachable: " + e.getMessage(), e);
        }
    }

    /** Tears the group down after a failure and names the worker that went away, when one can be found. */
    private TensorParallelException fail(Exception e) {
        Session s = session;
        session = null;
        if (s != null) s.close();
        String culprit = null;
        for (int i = 0; i < workers.size() && culprit == null; i++) {
            InetSocketAddress a = workers.get(i);
            try (Socket probe = new Socket()) {
                probe.connect(a, 500);
            } catch (IOException down) {
                culprit = "worker " + a.getHostString() + ":" + a.getPort() + " (rank " + (i + 1) + ") is gone: " + down.getMessage();
            }
        }
        String what = e instanceof CollectiveException ? "allreduce failed" : "control connection failed";
        return new TensorParallelException("tensor-parallel step failed: " + (culprit != null ? culprit + "; " : "") + what + ": " + e.getMessage(), e);
    }

    @Override
    public void close() {
        Session s = session;
        session = null;
        if (s != null) {
            for (Connection c : s.connections()) {
                try { TpProtocol.write(c.out(), new TpProtocol.Shutdown()); } catch (IOException ignored) { /* leaving anyway */ }
            }
            s.close();
        }
        backend.close();
    }

}
