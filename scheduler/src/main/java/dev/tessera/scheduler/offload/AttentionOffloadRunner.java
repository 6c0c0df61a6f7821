package dev.tessera.scheduler.offload;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.arch.LlamaWeights;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.offload.ComputeTurn;
import dev.tessera.offload.MemoryNodeException;
import dev.tessera.offload.OffloadClient;
import dev.tessera.offload.RemoteAttention;
import dev.tessera.scheduler.engine.DeviceUnavailableException;
import dev.tessera.scheduler.sched.SchedulerOutput;
import dev.tessera.scheduler.worker.ModelRunner;
import dev.tessera.scheduler.worker.RunnerGauge;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Lamina's compute node: embeddings, projections, rope, FFN and the classifier run here; the KV cache and attention run
 * on memory nodes ({@link OffloadClient}). Each step is cut into micro-batches that take turns on the compute device:
 * while one micro-batch's attention runs remotely, the other's dense work runs here (the paper's rotational pipeline
 * with two micro-batches). Every micro-batch runs the one model graph, over shared weights, with a
 * {@link RemoteAttention} in its attention slot.
 */
public final class AttentionOffloadRunner implements ModelRunner {
    private final ModelConfig config;
    private final OffloadClient client;
    private final LlamaModel[] lanes;
    private final RemoteAttention[] slots;
    private final ExecutorService others;
    private final int maxBatchTokens, maxLogitRows;
    // Written by the engine thread, read by metrics scrapes.
    private volatile long steps, stepNanos, busyNanos, pipelinedSteps;

    /**
     * @param numLanes micro-batches per step: 2 pipelines dense work against remote attention, 1 runs them in turn
     */
    public AttentionOffloadRunner(ModelConfig config, LlamaWeights weights, Backend backend, OffloadClient client, int numLanes,
                                  int maxBatchTokens, int maxLogitRows) {
        if (numLanes < 1 || numLanes > 2) throw new IllegalArgumentException("micro-batches per step must be 1 or 2, found " + numLanes);
        this.config = config;
        this.client = client;
        this.maxBatchTokens = maxBatchTokens;
        this.maxLogitRows = maxLogitRows;
        lanes = new LlamaModel[numLanes];
        slots = new RemoteAttention[numLanes];
        for (int i = 0; i < numLanes; i++) {
            slots[i] = client.lane(i, backend, maxBatchTokens);
            lanes[i] = new LlamaModel(config, weights, backend, maxBatchTokens, maxLogitRows, slots[i]);
        }
        others = numLanes > 1 ? Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().name("offload-lane-1").daemon().unstarted(r)) : null;
    }

    @Override public ModelConfig config() { return config; }
    @Override public int maxBatchTokens() { return maxBatchTokens; }
    @Override public long defaultKvCacheBudget() { return client.kvBudgetBytes(); }

    @Override
    public void allocateKv(int numBlocks, int blockSize, KvCacheType type) {
        client.allocate(numBlocks, blockSize, type.toString());
    }

    @Override
    public void execute(SchedulerOutput step, float[] logits, int[] ids) {
        long t0 = System.nanoTime(), busy0 = client.turn().busyNanos();
        try {
            client.beginStep(MicroBatches.attentionStep(step));
            List<MicroBatches.MicroBatch> parts = MicroBatches.split(step, lanes.length);
            List<Future<?>> running = new ArrayList<>();
            for (int i = 1; i < parts.size(); i++) {
                int lane = i;
                running.add(others.submit(() -> run(lane, parts.get(lane), step.argmaxOnly(), logits, ids)));
            }
            Throwable failure = null;
            try {
                run(0, parts.getFirst(), step.argmaxOnly(), logits, ids);
            } catch (RuntimeException | Error e) {
                failure = e;
            }
            for (Future<?> f : running) {
                try {
                    f.get();
                } catch (ExecutionException e) {
                    if (failure == null) failure = e.getCause();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    if (failure == null) failure = e;
                }
            }
            if (failure != null) throw failure;
            if (parts.size() > 1) pipelinedSteps++;
        } catch (MemoryNodeException e) {
            client.drop();
            throw new DeviceUnavailableException(e.getMessage(), e);
        } catch (RuntimeException | Error e) {
            client.drop();
            throw e;
        } catch (Throwable e) {
            client.drop();
            throw new IllegalStateException(e);
        }
        steps++;
        stepNanos += System.nanoTime() - t0;
        busyNanos += client.turn().busyNanos() - busy0;
    }

    /** Runs one micro-batch through its lane's graph, holding the compute device except while its attention is remote. */
    private void run(int lane, MicroBatches.MicroBatch m, boolean argmaxOnly, float[] logits, int[] ids) {
        int rows = m.logitRows().length;
        float[] laneLogits = argmaxOnly || rows == 0 ? null : new float[rows * config.vocabSize()];
        int[] laneIds = argmaxOnly ? new int[rows] : null;
        ComputeTurn turn = client.turn();
        turn.take();
        try {
            slots[lane].rows(m.rowFrom());
            if (argmaxOnly) lanes[lane].forwardArgmax(m.tokens(), m.batch(), m.logitRows(), laneIds);
            else lanes[lane].forward(m.tokens(), m.batch(), m.logitRows(), laneLogits == null ? new float[0] : laneLogits);
        } finally {
            turn.give();
        }
        if (argmaxOnly) System.arraycopy(laneIds, 0, ids, m.logitFrom(), rows);
        else if (rows > 0) System.arraycopy(laneLogits, 0, logits, m.logitFrom() * config.vocabSize(), rows * config.vocabSize());
    }

    @Override
    public void reset() {
        client.reset();
    }

    /** The share of step time the compute device sat idle waiting on memory nodes, 0..1 (NaN before the first step). */
    public double networkWaitShare() {
        return stepNanos == 0 ? Double.NaN : Math.max(0, 1 - (double) busyNanos / stepNanos);
    }

    public OffloadClient client() {
        return client;
    }

    @Override
    public List<String> stats() {
        List<String> out = new ArrayList<>(client.describe());
        out.add(String.format("attention offload: %d steps (%d pipelined in %d micro-batches), compute device waiting on the network %.1f%% of step time; "
                        + "%.0f bytes per token per layer on the wire (%s; Lamina's (2 + 2/G)·e·d = %.0f)",
                steps, pipelinedSteps, lanes.length, 100 * networkWaitShare(), client.bytesPerTokenLayer(), client.wire().flag(),
                client.paperBytesPerTokenLayer()));
        return out;
    }

    @Override
    public java.util.Map<String, RunnerGauge> gauges() {
        return java.util.Map.of(
                "tessera.offload.network.wait.ratio", new RunnerGauge("Share of step time the compute device waited on memory nodes (0..1)",
                        () -> stepNanos == 0 ? 0 : networkWaitShare()),
                "tessera.offload.wire.bytes.per.token.layer", new RunnerGauge("Bytes on the wire to and from memory nodes per token per layer, measured",
                        client::bytesPerTokenLayer),
                "tessera.offload.model.bytes.per.token.layer", new RunnerGauge("Lamina's (2 + 2/G)*e*d bytes per token per layer for this model and wire type",
                        client::paperBytesPerTokenLayer),
                "tessera.offload.pipelined.steps.ratio", new RunnerGauge("Share of steps run as two pipelined micro-batches (0..1)",
                        () -> steps == 0 ? 0 : (double) pipelinedSteps / steps));
    }

    @Override
    public void close() {
        if (others != null) others.shutdownNow();
        client.close();
        lanes[0].close();  // the lanes share one backend; closing it frees the weights too
    }
}
