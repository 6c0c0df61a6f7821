package dev.tessera.scheduler.worker;

import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.scheduler.sched.SchedulerOutput;

/** The whole model on one backend in this process. */
public final class LocalModelRunner implements ModelRunner {
    private final LlamaModel model;
    private StepInputs inputs;

    public LocalModelRunner(LlamaModel model) {
        this.model = model;
    }

    public LlamaModel model() {
        return model;
    }

    @Override public ModelConfig config() { return model.config(); }

    @Override public int maxBatchTokens() { return model.maxBatchTokens(); }

    @Override public long defaultKvCacheBudget() { return model.backend().defaultKvCacheBudget(); }

    @Override
    public void allocateKv(int numBlocks, int blockSize, KvCacheType type) {
        if (inputs != null) throw new IllegalStateException("KV memory is already allocated");
        KvBlockStore store = model.newKvBlockStore(blockSize, numBlocks, type);
        inputs = new StepInputs(store);
    }

    @Override
    public void execute(SchedulerOutput step, float[] logits, int[] ids) {
        StepInputs.Rows rows = inputs.apply(step);
        if (step.argmaxOnly()) model.forwardArgmax(rows.tokens(), rows.batch(), rows.logitRows(), ids);
        else model.forward(rows.tokens(), rows.batch(), rows.logitRows(), logits);
    }

    @Override
    public void reset() {
        if (inputs != null) inputs.clear();
    }

    /** Frees the KV memory; the model (and its backend) belongs to whoever loaded it. */
    @Override
    public void close() {
        if (inputs != null) {
            inputs.clear();
            inputs.store().close();
        }
    }
}
