package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.collective.AllReduce;
import dev.tessera.kernels.collective.AllReduceKind;
import dev.tessera.kernels.collective.Collective;
import dev.tessera.kernels.collective.CollectiveException;
import dev.tessera.kernels.collective.CollectiveGroup;
import dev.tessera.kernels.collective.HostCollective;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.arch.LlamaWeights;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufTensorInfo;
import dev.tessera.scheduler.engine.DeviceUnavailableException;
import dev.tessera.scheduler.sched.SchedulerOutput;
import dev.tessera.scheduler.worker.ModelRunner;
import dev.tessera.scheduler.worker.StepInputs;

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
 * The master (rank 0) of tensor-parallel inference as the engine's {@link ModelRunner}: keeps the embeddings, final
 * norm and classifier (so token ids and text never leave this process), runs its own share of every layer through the
 * same {@link LlamaModel} graph as a whole model, and broadcasts each step to the workers, which run theirs in
 * lockstep. Each rank keeps paged K/V for its own KV heads under the block ids of the engine's pool.
 *
 * <p>Connects lazily: the first step (and the first after a failure) sets up the group; while a worker is down every
 * step fails fast naming it, and once it is back the next one reconnects with empty KV memory everywhere (the engine
 * drops its prefix cache on the failure).
 */
public final class TensorParallelRunner implements ModelRunner {
    /** A failed tensor-parallel step; the message is one line naming the worker when one is to blame. */
    public static final class TensorParallelException extends DeviceUnavailableException {
        public TensorParallelException(String message, Throwable cause) { super(message, cause); }
    }

    private final GgufFile file;
    private final ModelConfig config;
    private final Backend backend;
    private final List<InetSocketAddress> workers;
    private final ShardPlan plan;
    private final AllReduceKind kind;
    private final int maxBatchTokens;
    private final Duration timeout;
    private final String fingerprint;
    private final InetSocketAddress collectiveListen;
    private final List<InetSocketAddress> masterAddressPerWorker;
    private final ShardWeights weights;
    private final LlamaModel model;
    private final SessionCollective collective = new SessionCollective();
    private StepInputs inputs;
    private int numKvBlocks, kvBlockSize;
    private KvCacheType kvCacheType;
    private Session session;

    private record Connection(InetSocketAddress address, int rank, Socket socket, DataInputStream in, DataOutputStream out, String collective) {}

    private record Session(List<Connection> connections, HostCollective collective) implements AutoCloseable {
        @Override
        public void close() {
            collective.close();
            for (Connection c : connections) {
                try { c.socket().close(); } catch (IOException ignored) { /* already gone */ }
            }
        }
    }

    /**
     * @param workers ranks 1..N-1 in order; plan.numDevices() must be workers.size() + 1
     * @param window memory window of the master's own share (0 = all resident)
     * @param maxLogitRows sequences that can need logits in one step (the engine's --max-num-seqs)
     * @param collectiveListen where rank 0's allreduce listener binds (a fixed port a proxy can forward to); null = an
     *                         ephemeral port on the interface of the first control connection
     * @param masterAddressPerWorker element i is where worker rank i+1 reaches rank 0's allreduce listener (e.g. a
     *                         {@link dev.tessera.kernels.collective.LinkEmulator}); empty = the listener's own address
     */
    public TensorParallelRunner(GgufFile file, ModelConfig config, Backend backend, List<InetSocketAddress> workers,
                                ShardPlan plan, AllReduceKind kind, int window, int maxBatchTokens, int maxLogitRows, Duration timeout,
                                InetSocketAddress collectiveListen, List<InetSocketAddress> masterAddressPerWorker) {
        if (!masterAddressPerWorker.isEmpty() && masterAddressPerWorker.size() != workers.size())
            throw new IllegalArgumentException(masterAddressPerWorker.size() + " rank-0 allreduce addresses for " + workers.size() + " workers (one per worker, in order)");
        if (plan.numDevices() != workers.size() + 1)
            throw new IllegalArgumentException(plan.numDevices() + " device weights for " + (workers.size() + 1) + " devices (the master and " + workers.size() + " workers)");
        this.collectiveListen = collectiveListen;
        this.masterAddressPerWorker = List.copyOf(masterAddressPerWorker);
        this.file = file;
        this.config = config;
        this.backend = backend;
        this.workers = List.copyOf(workers);
        this.plan = plan;
        this.kind = kind;
        this.maxBatchTokens = maxBatchTokens;
        this.timeout = timeout;
        this.fingerprint = ShardWriter.fingerprint(file.path());
        this.weights = new ShardWeights(config, plan, 0, file, false, backend, window);
        this.model = new LlamaModel(config, weights.shape(), weights, LlamaWeights.loadHead(file, config, backend), backend,
                collective, maxBatchTokens, maxLogitRows);
    }

    /** A plan proportional to weights, split at the block sizes of the model's attn_output and ffn_down. */
    public static ShardPlan plan(GgufFile file, ModelConfig config, int[] weights) {
        if (config.isMoe())
            throw new IllegalArgumentException(file.path().getFileName() + " is a mixture-of-experts model: tensor-parallel splits dense FFN columns only");
        GgufTensorInfo down = file.tensor("blk.0.ffn_down.weight"), wo = file.tensor("blk.0.attn_output.weight");
        if (down == null || wo == null) throw file.fail("missing tensor blk.0.ffn_down.weight or blk.0.attn_output.weight");
        // Plain-float FFN columns are cut at multiples of 4 where the width allows: the CUDA matvec reads F32 and F16
        // rows four columns at a time, so a rank on a GPU needs them.
        int ffnGranularity = down.type().blockSize;
        if (ffnGranularity < 4 && config.hiddenDim() % 4 == 0) ffnGranularity = 4;
        return ShardPlan.of(config, weights, ffnGranularity, wo.type().blockSize);
    }

    @Override public ModelConfig config() { return config; }

    @Override public int maxBatchTokens() { return maxBatchTokens; }

    @Override public long defaultKvCacheBudget() { return backend.defaultKvCacheBudget(); }

    public ShardPlan shardPlan() { return plan; }

    public String fingerprint() { return fingerprint; }

    @Override
    public void allocateKv(int numBlocks, int blockSize, KvCacheType type) {
        if (inputs != null) throw new IllegalStateException("KV memory is already allocated");
        this.numKvBlocks = numBlocks;
        this.kvBlockSize = blockSize;
        this.kvCacheType = type;
        inputs = new StepInputs(model.newKvBlockStore(blockSize, numBlocks, type));
    }

    /** Broadcasts the step, then runs rank 0's share; the collective keeps every rank in lockstep. */
    @Override
    public synchronized void execute(SchedulerOutput step, float[] logits, int[] ids) {
        if (inputs == null) throw new IllegalStateException("allocateKv first");
        Session s = connect();
        StepInputs.Rows rows = inputs.apply(step);
        try {
            for (Connection c : s.connections()) TpProtocol.write(c.out(), new TpProtocol.Step(step));
            if (step.argmaxOnly()) model.forwardArgmax(rows.tokens(), rows.batch(), rows.logitRows(), ids);
            else model.forward(rows.tokens(), rows.batch(), rows.logitRows(), logits);
        } catch (IOException | RuntimeException e) {
            throw fail(e);
        }
    }

    @Override
    public void reset() {
        if (inputs != null) inputs.clear();
    }

    /** One summary line per device (master first), and the most blocks each had resident. */
    @Override
    public List<String> stats() {
        List<String> lines = new ArrayList<>();
        for (TpProtocol.StatsReply r : deviceStats()) lines.add(r.summary() + " (peak " + r.peakResidentBlocks() + " blocks resident)");
        return lines;
    }

    public synchronized List<TpProtocol.StatsReply> deviceStats() {
        Session s = session;
        List<TpProtocol.StatsReply> out = new ArrayList<>();
        if (s == null) return out;
        out.add(new TpProtocol.StatsReply(weights.stats().summary("rank 0 (master)"), weights.window().window(), weights.window().peakResidentBlocks()));
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
            session = new Session(connections, new HostCollective(allReduce, backend));
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
            TpProtocol.write(out, new TpProtocol.Hello(TpProtocol.VERSION, rank, workers.size() + 1, fingerprint, plan.describe(), kind.flagName(),
                    maxBatchTokens, numKvBlocks, kvBlockSize, kvCacheType.name().toLowerCase(java.util.Locale.ROOT)));
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
        // A dying worker's peers can see its links reset before its listener closes: look again briefly.
        for (int round = 0; round < 3 && culprit == null; round++) {
            if (round > 0) {
                try { Thread.sleep(150); } catch (InterruptedException ie) { Thread.currentThread().interrupt(); break; }
            }
            for (int i = 0; i < workers.size() && culprit == null; i++) {
                InetSocketAddress a = workers.get(i);
                try (Socket probe = new Socket()) {
                    probe.connect(a, 500);
                } catch (IOException down) {
                    culprit = "worker " + a.getHostString() + ":" + a.getPort() + " (rank " + (i + 1) + ") is gone: " + down.getMessage();
                }
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
        if (inputs != null) {
            inputs.clear();
            inputs.store().close();
        }
        weights.close();
        backend.close();
    }

    /** The collective the graph was built with: the current session's group, which a reconnect replaces. */
    private final class SessionCollective implements Collective {
        private HostCollective current() {
            Session s = session;
            if (s == null) throw new CollectiveException("rank 0: no tensor-parallel session");
            return s.collective();
        }

        @Override public int rank() { return 0; }
        @Override public int size() { return workers.size() + 1; }
        @Override public String name() { return kind.flagName(); }
        @Override public void allReduce(Activations x, int numTokens) { current().allReduce(x, numTokens); }
        @Override public int allToAll(Activations send, int[] sendCounts, Activations recv, int[] recvCounts) {
            return current().allToAll(send, sendCounts, recv, recvCounts);
        }
        @Override public void close() {}
    }

}
