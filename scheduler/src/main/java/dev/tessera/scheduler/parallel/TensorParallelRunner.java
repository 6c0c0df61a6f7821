package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.collective.CollectiveKind;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.arch.LlamaWeights;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufTensorInfo;
import dev.tessera.scheduler.engine.DeviceUnavailableException;
import dev.tessera.scheduler.sched.SchedulerOutput;
import dev.tessera.scheduler.worker.ModelRunner;
import dev.tessera.scheduler.worker.StepInputs;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
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
    private final CollectiveKind kind;
    private final int maxBatchTokens;
    private final Duration timeout;
    private final String fingerprint;
    private final InetSocketAddress collectiveListen;
    private final List<InetSocketAddress> masterAddressPerWorker;
    private final ShardWeights weights;
    private final LlamaModel model;
    private final SessionCollective collective;
    private StepInputs inputs;
    private int numKvBlocks, kvBlockSize;
    private KvCacheType kvCacheType;
    private WorkerGroup session;

    /**
     * @param workers ranks 1..N-1 in order; plan.numDevices() must be workers.size() + 1
     * @param kind the collective; AUTO or NCCL is decided (or refused) when the group is set up, from what each worker
     *             reports it computes on
     * @param window memory window of the master's own share (0 = all resident)
     * @param maxLogitRows sequences that can need logits in one step (the engine's --max-num-seqs)
     * @param collectiveListen where rank 0's allreduce listener binds (a fixed port a proxy can forward to); null = an
     *                         ephemeral port on the interface of the first control connection
     * @param masterAddressPerWorker element i is where worker rank i+1 reaches rank 0's allreduce listener (e.g. a
     *                         {@link dev.tessera.kernels.collective.LinkEmulator}); empty = the listener's own address
     */
    public TensorParallelRunner(GgufFile file, ModelConfig config, Backend backend, List<InetSocketAddress> workers,
                                ShardPlan plan, CollectiveKind kind, int window, int maxBatchTokens, int maxLogitRows, Duration timeout,
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
        this.collective = new SessionCollective(() -> session, workers.size() + 1, kind.flagName());
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

    /** The collective the current session uses (star, ring or nccl: AUTO decided), else the one asked for. */
    public String collectiveName() { return collective.name(); }

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
        WorkerGroup s = connect();
        StepInputs.Rows rows = inputs.apply(step);
        try {
            for (WorkerGroup.Connection c : s.connections()) TpProtocol.write(c.out(), new TpProtocol.Step(step));
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
        WorkerGroup s = session;
        List<TpProtocol.StatsReply> out = new ArrayList<>();
        if (s == null) return out;
        out.add(new TpProtocol.StatsReply(weights.stats().summary("rank 0 (master)"), weights.window().window(), weights.window().peakResidentBlocks()));
        try {
            for (WorkerGroup.Connection c : s.connections()) {
                TpProtocol.write(c.out(), new TpProtocol.StatsRequest());
                if (!(TpProtocol.read(c.in()) instanceof TpProtocol.StatsReply r)) throw new TpProtocol.ProtocolException("expected a stats reply");
                out.add(new TpProtocol.StatsReply("worker " + c.address().getHostString() + ":" + c.address().getPort() + " " + r.summary(), r.window(), r.peakResidentBlocks()));
            }
        } catch (IOException | RuntimeException e) {
            throw fail(e);
        }
        return out;
    }

    private WorkerGroup connect() {
        if (session != null) return session;
        try {
            session = WorkerGroup.open(workers, this::hello, kind, backend, timeout, collectiveListen, masterAddressPerWorker);
            return session;
        } catch (IOException | RuntimeException e) {
            throw new TensorParallelException("tensor-parallel set-up failed: " + e.getMessage(), e);
        }
    }

    /** Sends one worker its hello (and its shard when it asks). */
    private TpProtocol.HelloOk hello(String name, int rank, DataInputStream in, DataOutputStream out) throws IOException {
        TpProtocol.write(out, new TpProtocol.Hello(TpProtocol.VERSION, rank, workers.size() + 1, fingerprint, plan.describe(), kind.flagName(),
                maxBatchTokens, numKvBlocks, kvBlockSize, kvCacheType.name().toLowerCase(java.util.Locale.ROOT)));
        TpProtocol.Message reply = TpProtocol.read(in);
        if (reply instanceof TpProtocol.NeedShard) {
            ShardSender.send(file, config, plan, rank, fingerprint, out, name, System.err);
            reply = TpProtocol.read(in);
        }
        return WorkerGroup.helloAnswer(name, reply);
    }

    /** Tears the group down after a failure and names the worker that went away, when one can be found. */
    private TensorParallelException fail(Exception e) {
        WorkerGroup s = session;
        session = null;
        return new TensorParallelException("tensor-parallel step failed: " + WorkerGroup.failure(s, workers, e, "allreduce"), e);
    }

    @Override
    public void close() {
        WorkerGroup s = session;
        session = null;
        if (s != null) s.shutdown();
        if (inputs != null) {
            inputs.clear();
            inputs.store().close();
        }
        weights.close();
        backend.close();
    }
}
