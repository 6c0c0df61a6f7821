package dev.tessera.scheduler.offload;

import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.KvCache;
import dev.tessera.offload.AttentionStep;
import dev.tessera.scheduler.sched.SchedulerOutput;

import java.util.ArrayList;
import java.util.List;

/**
 * A step cut into micro-batches for the staggered pipeline: whole sequences, contiguous in row order, about equal in
 * rows. Each carries the rows the compute node's graph takes; the KV caches those rows name are held by the memory
 * nodes, so here every row points at {@link #OFFLOADED}.
 */
final class MicroBatches {
    /** Stands in for a sequence's KV cache, which lives on the memory nodes. */
    static final KvCache OFFLOADED = new KvCache() {
        @Override public int capacity() { return Integer.MAX_VALUE; }
        @Override public void close() {}
    };

    /** One micro-batch: rows [rowFrom, rowFrom + tokens.length) of the step, and where its logit rows go in the output. */
    record MicroBatch(int rowFrom, int[] tokens, AttentionBatch batch, int[] logitRows, int logitFrom) {}

    private MicroBatches() {}

    /** The memory nodes' view of the step: no tokens, only rows, positions and table changes. */
    static AttentionStep attentionStep(SchedulerOutput step) {
        List<AttentionStep.Sequence> seqs = new ArrayList<>(step.sequences().size());
        for (SchedulerOutput.ScheduledSequence s : step.sequences())
            seqs.add(new AttentionStep.Sequence(s.id(), s.tokens().length, s.startPosition(), s.tableFrom(), s.newBlocks()));
        return new AttentionStep(seqs, step.released());
    }

    /** Up to {@code lanes} micro-batches (one when the step has a single sequence). */
    static List<MicroBatch> split(SchedulerOutput step, int lanes) {
        List<SchedulerOutput.ScheduledSequence> seqs = step.sequences();
        int total = step.numTokens();
        int parts = Math.max(1, Math.min(lanes, seqs.size()));
        List<MicroBatch> out = new ArrayList<>(parts);
        int s = 0, row = 0, logit = 0;
        for (int p = 0; p < parts; p++) {
            // Take sequences until this part holds its share of the rows, leaving one for each later part.
            int target = (int) Math.round((double) total * (p + 1) / parts);
            int end = s, rows = row;
            do {
                rows += seqs.get(end).tokens().length;
                end++;
            } while (end < seqs.size() - (parts - 1 - p) && rows < target);
            if (p == parts - 1) end = seqs.size();
            out.add(build(seqs.subList(s, end), row, logit));
            MicroBatch m = out.getLast();
            row += m.tokens().length;
            logit += m.logitRows().length;
            s = end;
        }
        return out;
    }

    private static MicroBatch build(List<SchedulerOutput.ScheduledSequence> seqs, int rowFrom, int logitFrom) {
        int n = 0, m = 0;
        for (SchedulerOutput.ScheduledSequence s : seqs) {
            n += s.tokens().length;
            m += s.logitRows();
        }
        int[] tokens = new int[n], positions = new int[n], logitRows = new int[m];
        KvCache[] caches = new KvCache[n];
        int row = 0, r = 0;
        for (SchedulerOutput.ScheduledSequence s : seqs) {
            for (int i = 0; i < s.tokens().length; i++, row++) {
                tokens[row] = s.tokens()[i];
                positions[row] = s.startPosition() + i;
                caches[row] = OFFLOADED;
            }
            for (int j = s.logitRows(); j > 0; j--) logitRows[r++] = row - j;
        }
        return new MicroBatch(rowFrom, tokens, new AttentionBatch(n, positions, caches), logitRows, logitFrom);
    }
}
