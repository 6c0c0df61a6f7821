package dev.tessera.scheduler.offload;

import dev.tessera.scheduler.sched.SchedulerOutput;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Steps cut into micro-batches: whole sequences, in row order, balanced by rows, logit rows placed in order. */
class MicroBatchesTest {
    static SchedulerOutput.ScheduledSequence seq(int id, int rows, boolean logits) {
        return new SchedulerOutput.ScheduledSequence(id, new int[rows], 10 * id, 0, new int[0], logits);
    }

    @Test
    void decodeStepsSplitInHalves() {
        SchedulerOutput step = new SchedulerOutput(List.of(seq(1, 1, true), seq(2, 1, true), seq(3, 1, true), seq(4, 1, true), seq(5, 1, true)), new int[0], true);
        List<MicroBatches.MicroBatch> parts = MicroBatches.split(step, 2);
        assertEquals(2, parts.size());
        assertEquals(3, parts.get(0).tokens().length);
        assertEquals(0, parts.get(0).rowFrom());
        assertEquals(3, parts.get(1).rowFrom());
        assertEquals(3, parts.get(1).logitFrom());
        assertArrayEquals(new int[]{0, 1}, parts.get(1).logitRows());
        assertEquals(40, parts.get(1).batch().positions()[0]);
    }

    @Test
    void aLongPrefillIsNotCutAndKeepsTheOthersApart() {
        SchedulerOutput step = new SchedulerOutput(List.of(seq(1, 30, false), seq(2, 1, true), seq(3, 1, true)), new int[0], false);
        List<MicroBatches.MicroBatch> parts = MicroBatches.split(step, 2);
        assertEquals(30, parts.get(0).tokens().length);
        assertEquals(0, parts.get(0).logitRows().length);
        assertEquals(2, parts.get(1).tokens().length);
        assertEquals(0, parts.get(1).logitFrom());
        assertEquals(1, MicroBatches.split(new SchedulerOutput(List.of(seq(1, 8, true)), new int[0], true), 2).size());
        assertEquals(3, MicroBatches.attentionStep(step).sequences().size());
    }
}
