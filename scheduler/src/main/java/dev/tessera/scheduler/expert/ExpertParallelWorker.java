package dev.tessera.scheduler.expert;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.collective.Collective;
import dev.tessera.kernels.collective.CollectiveException;
import dev.tessera.kernels.collective.CollectiveKind;
import dev.tessera.models.arch.ExpertParallelFeedForward;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.arch.LlamaWeights;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.scheduler.parallel.SessionServer;
import dev.tessera.scheduler.parallel.ShardWriter;
import dev.tessera.scheduler.parallel.TpProtocol;
import dev.tessera.scheduler.parallel.WorkerCollective;
import dev.tessera.scheduler.sched.SchedulerOutput;
import dev.tessera.scheduler.worker.StepInputs;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.IntFunction;

/**
 * An expert-parallel worker process ('tessera expert-worker'): holds the same model file as the master, loads the whole
 * model but only the experts the master's placement gives its device, joins the group's collective and runs each step
 * in lockstep with the master ({@link ExpertParallelRunner}). One master at a time ({@link SessionServer}), so either
 * side may restart; the collective is TCP or NCCL as the master's group frame says ({@link WorkerCollective}).
 */
public final class ExpertParallelWorker implements AutoCloseable {
    private final SessionServer control;
    private final Path modelPath;
    private final String fingerprint;
    private final IntFunction<Backend> backends;
    private final Duration timeout;
    private final PrintStream log;

    public ExpertParallelWorker(InetSocketAddress listen, Path modelPath, IntFunction<Backend> backends, Duration timeout, PrintStream log) {
        try (GgufFile file = GgufFile.open(modelPath)) {
            if (!ModelConfig.fromGguf(file).isMoe())
                throw new IllegalArgumentException(modelPath.getFileName() + " is not a mixture-of-experts model: an expert worker has no experts to hold");
        }
        this.modelPath = modelPath;
        this.fingerprint = ShardWriter.fingerprint(modelPath);
        this.backends = backends;
        this.timeout = timeout;
        this.log = log;
        this.control = new SessionServer(listen, "tessera expert-worker", log);
    }

    public int port() { return control.port(); }

    /** Serves masters one after another until closed. */
    public void serve() {
        log.println("tessera expert-worker: listening on " + control.address() + " with " + modelPath.getFileName());
        control.serve(this::session);
    }

    private void session(Socket socket) throws IOException {
        socket.setTcpNoDelay(true);
        DataInputStream in = new DataInputStream(new BufferedInputStream(socket.getInputStream()));
        DataOutputStream out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream()));
        if (!(TpProtocol.read(in) instanceof TpProtocol.Hello hello)) throw new TpProtocol.ProtocolException("expected a hello frame first");
        if (!hello.plan().startsWith("experts:")) {
            refuse(out, socket, "this is an expert-parallel worker ('tessera expert-worker'); a tensor-parallel master needs 'tessera worker'");
            return;
        }
        if (!(TpProtocol.read(in) instanceof TpProtocol.ExpertPlan plan)) throw new TpProtocol.ProtocolException("expected the expert plan after the hello");
        if (!hello.fingerprint().equals(fingerprint)) {
            refuse(out, socket, "the master serves another model file (fingerprint " + hello.fingerprint() + ", this worker holds "
                    + modelPath.getFileName() + " = " + fingerprint + ")");
            return;
        }
        CollectiveKind kind;
        KvCacheType kvType;
        ExpertParallelFeedForward.Mode mode;
        try {
            kind = CollectiveKind.parse(hello.allReduce());
            kvType = KvCacheType.parse(hello.kvCacheType());
            mode = ExpertParallelFeedForward.Mode.parse(plan.mode());
        } catch (IllegalArgumentException e) {
            refuse(out, socket, e.getMessage());
            return;
        }
        int rank = hello.rank(), size = hello.numDevices();
        int[][] devices = new int[plan.numLayers()][plan.numExperts()];
        for (int l = 0; l < plan.numLayers(); l++) System.arraycopy(plan.deviceOfExpert(), l * plan.numExperts(), devices[l], 0, plan.numExperts());
        try (GgufFile file = GgufFile.open(modelPath);
             Backend backend = backends.apply(0)) {
            ModelConfig config = ModelConfig.fromGguf(file);
            LlamaModel model;
            ServerSocket listener = null;
            LateCollective collective = new LateCollective(rank, size);
            try {
                if (plan.numLayers() != config.numLayers() || plan.numExperts() != config.moe().numExperts())
                    throw new IllegalArgumentException("the plan places " + plan.numExperts() + " experts in " + plan.numLayers() + " layers; "
                            + modelPath.getFileName() + " has " + config.moe().numExperts() + " in " + config.numLayers());
                LlamaWeights weights = LlamaWeights.load(file, config, backend, (l, e) -> devices[l][e] == rank);
                model = new LlamaModel(config, weights, backend, hello.maxBatchTokens(), Math.min(plan.maxLogitRows(), hello.maxBatchTokens()),
                        new ExpertParallelFeedForward(config, backend, hello.maxBatchTokens(), collective, devices, mode));
                listener = WorkerCollective.listener(kind, rank, size, socket);
            } catch (RuntimeException e) {
                refuse(out, socket, e.getMessage());
                return;
            }
            TpProtocol.write(out, WorkerCollective.helloOk(listener, socket, backend));
            if (!(TpProtocol.read(in) instanceof TpProtocol.Group group)) {
                if (listener != null) listener.close();
                throw new TpProtocol.ProtocolException("expected the group frame after hello");
            }
            int owned = 0;
            for (int[] layer : devices) for (int d : layer) if (d == rank) owned++;
            log.println("tessera expert-worker: device " + rank + " of " + size + " (" + mode.flag + "), " + owned + " experts over "
                    + config.numLayers() + " layers, " + group.collective() + " links, " + hello.numKvBlocks() + " KV blocks of " + hello.kvBlockSize()
                    + " (" + hello.kvCacheType() + ") on " + backend.name());
            try (Collective links = WorkerCollective.join(group, kind, rank, size, listener, backend, timeout, out)) {
                collective.set(links);
                StepInputs inputs = new StepInputs(model.newKvBlockStore(hello.kvBlockSize(), hello.numKvBlocks(), kvType));
                try {
                    steps(in, out, model, inputs, config, mode, rank, size);
                } finally {
                    inputs.clear();
                    inputs.store().close();
                }
            }
        }
    }

    private void refuse(DataOutputStream out, Socket socket, String why) throws IOException {
        log.println("tessera expert-worker: refused master " + socket.getRemoteSocketAddress() + ": " + why);
        TpProtocol.write(out, new TpProtocol.HelloError(why));
    }

    private static final int[] NO_ROWS = {};

    private void steps(DataInputStream in, DataOutputStream out, LlamaModel model, StepInputs inputs, ModelConfig config,
                       ExpertParallelFeedForward.Mode mode, int rank, int size) throws IOException {
        while (true) {
            TpProtocol.Message m = TpProtocol.read(in);
            switch (m) {
                case TpProtocol.TokenStep s -> step(out, model, inputs, config, mode, rank, size, s.output());
                case TpProtocol.Shutdown s -> { return; }
                default -> throw new TpProtocol.ProtocolException("unexpected " + m.getClass().getSimpleName() + " frame during a session");
            }
        }
    }

    private void step(DataOutputStream out, LlamaModel model, StepInputs inputs, ModelConfig config, ExpertParallelFeedForward.Mode mode,
                      int rank, int size, SchedulerOutput step) throws IOException {
        if (step.numTokens() > model.maxBatchTokens())
            throw new TpProtocol.ProtocolException("step of " + step.numTokens() + " rows, limit " + model.maxBatchTokens());
        for (SchedulerOutput.ScheduledSequence s : step.sequences())
            for (int t : s.tokens())
                if (t >= config.vocabSize()) throw new TpProtocol.ProtocolException("token id " + t + " outside the vocabulary of " + config.vocabSize());
        StepInputs.Rows all;
        try {
            all = inputs.apply(step);
        } catch (IllegalArgumentException e) {
            throw new TpProtocol.ProtocolException("bad step: " + e.getMessage());
        }
        if (mode == ExpertParallelFeedForward.Mode.COHERENT) {
            model.forward(all.tokens(), all.batch(), NO_ROWS, null);
            return;
        }
        TpProtocol.write(out, DeviceRows.runOwn(model, step, all, DeviceRows.owners(step, all, size), rank));
    }

    /** The session's collective, which exists only once the group is connected, after the model is built. */
    private static final class LateCollective implements Collective {
        private final int rank, size;
        private Collective links;

        LateCollective(int rank, int size) {
            this.rank = rank;
            this.size = size;
        }

        void set(Collective links) { this.links = links; }

        private Collective links() {
            if (links == null) throw new CollectiveException("device " + rank + ": the group is not connected yet");
            return links;
        }

        @Override public int rank() { return rank; }
        @Override public int size() { return size; }
        @Override public String name() { return links().name(); }
        @Override public void allReduce(Activations x, int numTokens) { links().allReduce(x, numTokens); }
        @Override public int allToAll(Activations send, int[] sendCounts, Activations recv, int[] recvCounts) {
            return links().allToAll(send, sendCounts, recv, recvCounts);
        }
        @Override public void close() {}
    }

    @Override
    public void close() {
        control.close();
    }
}
