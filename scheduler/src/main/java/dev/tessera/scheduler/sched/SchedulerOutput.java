package dev.tessera.scheduler.sched;

import java.util.List;

/**
 * One engine step as plain data, the only thing that crosses from the scheduler to a model runner (in this process,
 * or broadcast to tensor-parallel workers): which sequences run, their new tokens and positions, what changed in their
 * block tables, which sequences were let go, and which need logits. Runners keep each sequence's table from step to
 * step, so only changes travel.
 *
 * @param sequences  the sequences of this step in row order: each one's rows are contiguous
 * @param released   sequences whose blocks went back to the pool since the last step: runners forget their tables
 * @param argmaxOnly every row that needs logits is plain greedy: the runner may return ids instead of logits
 */
public record SchedulerOutput(List<ScheduledSequence> sequences, int[] released, boolean argmaxOnly) {

    /**
     * @param id            the sequence's id, stable while it lives (across preemption too)
     * @param tokens        its new token ids, at positions {@code startPosition ..}
     * @param tableFrom     the block-table index {@code newBlocks} start at: 0 replaces the table, more appends;
     *                      with no new blocks the table is unchanged
     * @param newBlocks     block ids (from the scheduler's pool) for table entries {@code tableFrom ..}
     * @param logitRows     how many of its rows, counted back from the last, need logits: 0; 1 when it is sampled this
     *                      step; more when its prompt's log-probabilities are asked for: one row per prompt position
     *                      scored, plus the chunk's last row when the chunk ends the prompt (sampled, or unused when
     *                      nothing is to be generated)
     */
    public record ScheduledSequence(int id, int[] tokens, int startPosition, int tableFrom, int[] newBlocks, int logitRows) {
        public ScheduledSequence {
            if (logitRows < 0 || logitRows > tokens.length)
                throw new IllegalArgumentException("logit rows " + logitRows + " of a sequence with " + tokens.length + " rows");
        }

        /** The last row alone needs logits, or none does. */
        public ScheduledSequence(int id, int[] tokens, int startPosition, int tableFrom, int[] newBlocks, boolean needsLogits) {
            this(id, tokens, startPosition, tableFrom, newBlocks, needsLogits ? 1 : 0);
        }

        public boolean needsLogits() {
            return logitRows > 0;
        }
    }

    public int numTokens() {
        int n = 0;
        for (ScheduledSequence s : sequences) n += s.tokens().length;
        return n;
    }

    /** Rows that need logits, in the order runners return them. */
    public int numLogitRows() {
        int n = 0;
        for (ScheduledSequence s : sequences) n += s.logitRows();
        return n;
    }
}
