package dev.tessera.scheduler.expert;

import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.PagedKvCache;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.scheduler.parallel.TpProtocol;
import dev.tessera.scheduler.sched.SchedulerOutput;
import dev.tessera.scheduler.worker.StepInputs;

import java.util.Arrays;

/**
 * Which device runs which sequence when attention is data-parallel (the two-all-to-all baseline), and the rows of a
 * step that fall to one device. A sequence belongs to the device its first KV block's id picks ({@code id mod D}): the
 * first block never changes while the sequence lives, and a sequence that reuses a cached prefix starts with the same
 * block, so it lands where that prefix's K/V already is. Every device works this out alike from the step it is sent.
 */
final class DeviceRows {
    private DeviceRows() {}

    /** The device of each sequence of the step, in step order. */
    static int[] owners(SchedulerOutput step, StepInputs.Rows all, int numDevices) {
        int[] owner = new int[step.sequences().size()];
        int row = 0;
        for (int i = 0; i < owner.length; i++) {
            KvCache cache = all.batch().sequences()[row];
            int first = ((PagedKvCache) cache).blocks()[0];
            owner[i] = Math.floorMod(first, numDevices);
            row += step.sequences().get(i).tokens().length;
        }
        return owner;
    }

    /** The rows of the sequences {@code device} owns, in step order, with their logit rows. */
    static StepInputs.Rows select(SchedulerOutput step, StepInputs.Rows all, int[] owner, int device) {
        int n = 0, m = 0;
        for (int i = 0; i < owner.length; i++) {
            if (owner[i] != device) continue;
            n += step.sequences().get(i).tokens().length;
            m += step.sequences().get(i).logitRows();
        }
        int[] tokens = new int[n], positions = new int[n], logitRows = new int[m];
        KvCache[] caches = new KvCache[n];
        int from = 0, to = 0, r = 0;
        for (int i = 0; i < owner.length; i++) {
            SchedulerOutput.ScheduledSequence s = step.sequences().get(i);
            int len = s.tokens().length;
            if (owner[i] == device) {
                System.arraycopy(all.tokens(), from, tokens, to, len);
                System.arraycopy(all.batch().positions(), from, positions, to, len);
                System.arraycopy(all.batch().sequences(), from, caches, to, len);
                to += len;
                for (int j = s.logitRows(); j > 0; j--) logitRows[r++] = to - j;
            }
            from += len;
        }
        return new StepInputs.Rows(tokens, new AttentionBatch(n, positions, caches), logitRows);
    }

    /**
     * Runs the rows {@code device} owns through its model: the greedy ids of its logit rows (an argmax-only step) or
     * their logits, in step order, as that device returns them.
     */
    static TpProtocol.StepResult runOwn(LlamaModel model, SchedulerOutput step, StepInputs.Rows all, int[] owner, int device) {
        StepInputs.Rows mine = select(step, all, owner, device);
        int rows = mine.logitRows().length;
        if (step.argmaxOnly()) {
            int[] ids = new int[rows];
            model.forwardArgmax(mine.tokens(), mine.batch(), mine.logitRows(), ids);
            return new TpProtocol.StepResult(ids, new float[0]);
        }
        float[] logits = new float[rows * model.config().vocabSize()];
        model.forward(mine.tokens(), mine.batch(), mine.logitRows(), logits);
        return new TpProtocol.StepResult(new int[0], logits);
    }

    /** Indices, in the step's logit-row order, of the rows {@code device} returns. */
    static int[] logitRowsOf(SchedulerOutput step, int[] owner, int device) {
        int[] out = new int[step.numLogitRows()];
        int count = 0, r = 0;
        for (int i = 0; i < owner.length; i++)
            for (int j = step.sequences().get(i).logitRows(); j > 0; j--, r++)
                if (owner[i] == device) out[count++] = r;
        return Arrays.copyOf(out, count);
    }
}
