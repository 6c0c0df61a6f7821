package dev.tessera.scheduler.expert;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.collective.CollectiveKind;
import dev.tessera.models.arch.ExpertParallelFeedForward;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.arch.LlamaWeights;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.scheduler.engine.DeviceUnavailableException;
import dev.tessera.scheduler.parallel.SessionCollective;
import dev.tessera.scheduler.parallel.ShardWriter;
import dev.tessera.scheduler.parallel.TpProtocol;
import dev.tessera.scheduler.parallel.WorkerGroup;
import dev.tessera.scheduler.sched.SchedulerOutput;
import dev.tessera.scheduler.worker.ModelRunner;
import dev.tessera.scheduler.worker.StepInputs;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Locale;

/**
 * Device 0 of expert-parallel inference as the engine's {@link ModelRunner}: every device holds the whole model but
 * only its own experts ({@code deviceOfExpert}, e.g. an ExFlow placement), and each MoE layer's tokens meet their
 * experts through the group's collective ({@link ExpertParallelFeedForward}). This process runs the engine and sends
 * every step, token ids included, to the workers ('tessera expert-worker'), which run it in lockstep.
 * <ul>
 *   <li>coherent (ExFlow): every device runs every sequence (each holds all the KV), one exchange per MoE layer; this
 *   device samples.</li>
 *   <li>baseline: attention is data-parallel ({@link DeviceRows}: a sequence lives on one device); two all-to-alls per
 *   MoE layer; each device returns the logits (or greedy ids) of its own sequences.</li>
 * </ul>
 * Connects lazily and reconnects after a failure, as the tensor-parallel master does; a failed step names the worker.
 */
public final class ExpertParallelRunner implements ModelRunner {
    /** A failed expert-parallel step; the message names the worker when one is to blame. */
    public static final class ExpertParallelException extends DeviceUnavailableException {
        public ExpertParallelException(String message, Throwable cause) { super(message, cause); }
    }

    private final ModelConfig config;
    private final Backend backend;
    private final List<InetSocketAddress> workers;
    private final int[][] deviceOfExpert;
    private final ExpertParallelFeedForward.Mode mode;
    private final CollectiveKind kind;
    private final int maxBatchTokens, maxLogitRows;
    private final Duration timeout;
    private final InetSocketAddress collectiveListen;
    private final List<InetSocketAddress> via;
    private final String fingerprint;
    private final LlamaModel model;
    private final SessionCollective collective;
    private StepInputs inputs;
    private int numKvBlocks, kvBlockSize;
    private KvCacheType kvCacheType;
    private WorkerGroup session;
    private long steps;

    /**
     * @param deviceOfExpert [layer][expert] → device 0..workers.size(); this process is device 0
     * @param kind           AUTO or NCCL is decided (or refused) at group set-up from what each worker computes on. Over
     *                       NCCL both modes' exchanges stay eager (the expert feed-forward is never recorded), as NCCL's
     *                       all-to-all reads its counts back to the host.
     * @param via            element i is where worker i reaches this device's collective listener (a link emulator);
     *                       empty = directly; needs {@code collectiveListen}
     */
    public ExpertParallelRunner(GgufFile file, ModelConfig config, Backend backend, List<InetSocketAddress> workers, int[][] deviceOfExpert,
                                ExpertParallelFeedForward.Mode mode, CollectiveKind kind, int maxBatchTokens, int maxLogitRows, Duration timeout,
                                InetSocketAddress collectiveListen, List<InetSocketAddress> via) {
        if (!config.isMoe()) throw new IllegalArgumentException(file.path().getFileName() + " is not a mixture-of-experts model: expert parallelism has no experts to place");
        if (workers.isEmpty()) throw new IllegalArgumentException("expert parallelism needs at least one worker");
        if (!via.isEmpty() && via.size() != workers.size())
            throw new IllegalArgumentException(via.size() + " collective routes for " + workers.size() + " workers (one per worker, in order)");
        this.config = config;
        this.backend = backend;
        this.workers = List.copyOf(workers);
        this.deviceOfExpert = deviceOfExpert;
        this.mode = mode;
        this.kind = kind;
        this.maxBatchTokens = maxBatchTokens;
        this.maxLogitRows = maxLogitRows;
        this.timeout = timeout;
        this.collectiveListen = collectiveListen;
        this.via = List.copyOf(via);
        this.fingerprint = ShardWriter.fingerprint(file.path());
        this.collective = new SessionCollective(() -> session, workers.size() + 1, kind.flagName());
        LlamaWeights weights = LlamaWeights.load(file, config, backend, (l, e) -> deviceOfExpert[l][e] == 0);
        ExpertParallelFeedForward ffn = new ExpertParallelFeedForward(config, backend, maxBatchTokens, collective, deviceOfExpert, mode);
        this.model = new LlamaModel(config, weights, backend, maxBatchTokens, maxLogitRows, ffn);
    }

    @Override public ModelConfig config() { return config; }

    @Override public int maxBatchTokens() { return maxBatchTokens; }

    @Override public long defaultKvCacheBudget() { return backend.defaultKvCacheBudget(); }

    public int numDevices() { return workers.size() + 1; }

    public ExpertParallelFeedForward.Mode mode() { return mode; }

    @Override
    public void allocateKv(int numBlocks, int blockSize, KvCacheType type) {
        if (inputs != null) throw new IllegalStateException("KV memory is already allocated");
        numKvBlocks = numBlocks;
        kvBlockSize = blockSize;
        kvCacheType = type;
        inputs = new StepInputs(model.newKvBlockStore(blockSize, numBlocks, type));
    }

    @Override
    public synchronized void execute(SchedulerOutput step, float[] logits, int[] ids) {
        if (inputs == null) throw new IllegalStateException("allocateKv first");
        WorkerGroup group = connect();
        StepInputs.Rows all = inputs.apply(step);
        try {
            for (WorkerGroup.Connection c : group.connections()) TpProtocol.write(c.out(), new TpProtocol.TokenStep(step));
            steps++;
            if (mode == ExpertParallelFeedForward.Mode.COHERENT) {
                run(all, step.argmaxOnly(), logits, ids);
                return;
            }
            int[] owner = DeviceRows.owners(step, all, numDevices());
            int vocab = config.vocabSize();
            TpProtocol.StepResult mine = DeviceRows.runOwn(model, step, all, owner, 0);
            place(DeviceRows.logitRowsOf(step, owner, 0), mine.ids(), mine.logits(), step.argmaxOnly(), logits, ids);
            for (WorkerGroup.Connection c : group.connections()) {
                int[] rows = DeviceRows.logitRowsOf(step, owner, c.rank());
                if (!(TpProtocol.read(c.in()) instanceof TpProtocol.StepResult r))
                    throw new TpProtocol.ProtocolException(WorkerGroup.name(c.address(), c.rank()) + " answered a step with something else than its result");
                if (r.ids().length != (step.argmaxOnly() ? rows.length : 0) || r.logits().length != (step.argmaxOnly() ? 0 : rows.length * vocab))
                    throw new TpProtocol.ProtocolException(WorkerGroup.name(c.address(), c.rank()) + " returned " + r.ids().length + " ids and "
                            + r.logits().length + " logits for " + rows.length + " rows");
                place(rows, r.ids(), r.logits(), step.argmaxOnly(), logits, ids);
            }
        } catch (IOException | RuntimeException e) {
            throw fail(e);
        }
    }

    private void run(StepInputs.Rows rows, boolean argmaxOnly, float[] logits, int[] ids) {
        if (argmaxOnly) model.forwardArgmax(rows.tokens(), rows.batch(), rows.logitRows(), ids);
        else model.forward(rows.tokens(), rows.batch(), rows.logitRows(), logits);
    }

    /** Puts a device's results (its rows in step order) at their places among the step's logit rows. */
    private void place(int[] rows, int[] fromIds, float[] fromLogits, boolean argmaxOnly, float[] logits, int[] ids) {
        int vocab = config.vocabSize();
        for (int i = 0; i < rows.length; i++) {
            if (argmaxOnly) ids[rows[i]] = fromIds[i];
            else System.arraycopy(fromLogits, i * vocab, logits, rows[i] * vocab, vocab);
        }
    }

    @Override
    public void reset() {
        if (inputs != null) inputs.clear();
    }

    @Override
    public List<String> stats() {
        int perLayer = mode == ExpertParallelFeedForward.Mode.COHERENT ? 1 : 2;
        return List.of("expert-parallel (" + mode.flag + ") over " + numDevices() + " devices: " + steps + " steps, "
                + steps * config.numLayers() * perLayer + " MoE-layer exchanges (" + perLayer + " per layer)");
    }

    private WorkerGroup connect() {
        if (session != null) return session;
        try {
            session = WorkerGroup.open(workers, this::hello, kind, backend, timeout, collectiveListen, via);
            return session;
        } catch (IOException | RuntimeException e) {
            throw new ExpertParallelException("expert-parallel set-up failed: " + e.getMessage(), e);
        }
    }

    private TpProtocol.HelloOk hello(String name, int rank, DataInputStream in, DataOutputStream out) throws IOException {
        TpProtocol.write(out, new TpProtocol.Hello(TpProtocol.VERSION, rank, numDevices(), fingerprint, "experts:" + mode.flag, kind.flagName(),
                maxBatchTokens, numKvBlocks, kvBlockSize, kvCacheType.name().toLowerCase(Locale.ROOT)));
        int layers = deviceOfExpert.length, experts = deviceOfExpert[0].length;
        int[] flat = new int[layers * experts];
        for (int l = 0; l < layers; l++) System.arraycopy(deviceOfExpert[l], 0, flat, l * experts, experts);
        TpProtocol.write(out, new TpProtocol.ExpertPlan(mode.flag, maxLogitRows, layers, experts, flat));
        return WorkerGroup.helloAnswer(name, TpProtocol.read(in));
    }

    private ExpertParallelException fail(Exception e) {
        WorkerGroup s = session;
        session = null;
        return new ExpertParallelException("expert-parallel step failed: " + WorkerGroup.failure(s, workers, e, "expert exchange"), e);
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
        backend.close();
    }
}
