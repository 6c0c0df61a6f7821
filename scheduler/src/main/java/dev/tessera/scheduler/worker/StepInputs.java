package dev.tessera.scheduler.worker;

import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.PagedSequences;
import dev.tessera.scheduler.sched.SchedulerOutput;

/**
 * Input building on the runner's side: keeps each live sequence's block table over this runner's KV store
 * ({@link PagedSequences}), applies each step's table changes, and flattens the step into the rows the model graph
 * takes (tokens, positions, caches) and the indices of the rows that need logits. The same on the master and on every
 * tensor-parallel worker, so all ranks address the same blocks.
 */
public final class StepInputs {
    private final PagedSequences sequences;

    /** The rows of one step. */
    public record Rows(int[] tokens, AttentionBatch batch, int[] logitRows) {}

    public StepInputs(KvBlockStore store) {
        this.sequences = new PagedSequences(store);
    }

    public KvBlockStore store() {
        return sequences.store();
    }

    public int numSequences() {
        return sequences.size();
    }

    /** Applies the step's releases and table changes, then lays out its rows. */
    public Rows apply(SchedulerOutput step) {
        for (int id : step.released()) sequences.release(id);
        int n = step.numTokens();
        int[] tokens = new int[n], positions = new int[n], logitRows = new int[step.numLogitRows()];
        KvCache[] rows = new KvCache[n];
        int row = 0, r = 0;
        for (SchedulerOutput.ScheduledSequence s : step.sequences()) {
            int[] t = s.tokens();
            KvCache cache = sequences.update(s.id(), s.tableFrom(), s.newBlocks(), s.startPosition() + t.length);
            for (int i = 0; i < t.length; i++) {
                tokens[row] = t[i];
                positions[row] = s.startPosition() + i;
                rows[row] = cache;
                row++;
            }
            for (int j = s.logitRows(); j > 0; j--) logitRows[r++] = row - j;
        }
        return new Rows(tokens, new AttentionBatch(n, positions, rows), logitRows);
    }

    /** Forgets every sequence (after a failed step the scheduler has released them all). */
    public void clear() {
        sequences.clear();
    }
}
