package dev.tessera.scheduler.worker;

import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.PagedKvCache;
import dev.tessera.scheduler.sched.SchedulerOutput;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Input building on the runner's side: keeps a {@link PagedKvCache} per live sequence over this runner's KV store,
 * applies each step's table changes, and flattens the step into the rows the model graph takes (tokens, positions,
 * caches) and the indices of the rows that need logits. The same on the master and on every tensor-parallel worker, so
 * all ranks address the same blocks.
 */
public final class StepInputs {
    private final KvBlockStore store;
    private final Map<Integer, PagedKvCache> caches = new HashMap<>();

    /** The rows of one step. */
    public record Rows(int[] tokens, AttentionBatch batch, int[] logitRows) {}

    public StepInputs(KvBlockStore store) {
        this.store = store;
    }

    public KvBlockStore store() {
        return store;
    }

    public int numSequences() {
        return caches.size();
    }

    /** Applies the step's releases and table changes, then lays out its rows. */
    public Rows apply(SchedulerOutput step) {
        for (int id : step.released()) {
            PagedKvCache c = caches.remove(id);
            if (c != null) c.close();
        }
        int n = step.numTokens();
        int[] tokens = new int[n], positions = new int[n], logitRows = new int[step.numLogitRows()];
        KvCache[] rows = new KvCache[n];
        int row = 0, r = 0;
        for (SchedulerOutput.ScheduledSequence s : step.sequences()) {
            PagedKvCache cache = caches.computeIfAbsent(s.id(), id -> new PagedKvCache(store));
            if (s.newBlocks().length > 0) {
                if (s.tableFrom() > cache.numBlocks())
                    throw new IllegalArgumentException("sequence " + s.id() + ": table change at entry " + s.tableFrom() + " of a table of " + cache.numBlocks());
                int[] ids = Arrays.copyOf(cache.blocks(), s.tableFrom() + s.newBlocks().length);
                System.arraycopy(s.newBlocks(), 0, ids, s.tableFrom(), s.newBlocks().length);
                cache.setBlocks(ids, ids.length);
            }
            int[] t = s.tokens();
            if (s.startPosition() + t.length > cache.capacity())
                throw new IllegalArgumentException("sequence " + s.id() + ": positions up to " + (s.startPosition() + t.length)
                        + " beyond its " + cache.numBlocks() + " KV blocks");
            for (int i = 0; i < t.length; i++) {
                tokens[row] = t[i];
                positions[row] = s.startPosition() + i;
                rows[row] = cache;
                row++;
            }
            if (s.needsLogits()) logitRows[r++] = row - 1;
        }
        return new Rows(tokens, new AttentionBatch(n, positions, rows), logitRows);
    }

    /** Forgets every sequence (after a failed step the scheduler has released them all). */
    public void clear() {
        for (PagedKvCache c : caches.values()) c.close();
        caches.clear();
    }
}
