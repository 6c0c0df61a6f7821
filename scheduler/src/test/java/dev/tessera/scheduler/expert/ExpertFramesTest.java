package dev.tessera.scheduler.expert;

import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.scheduler.parallel.TpProtocol;
import dev.tessera.scheduler.sched.SchedulerOutput;
import dev.tessera.scheduler.sched.SchedulerOutput.ScheduledSequence;
import dev.tessera.scheduler.worker.StepInputs;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The expert-parallel control frames (plan, step with tokens, result) and which device runs which sequence. */
class ExpertFramesTest {

    static byte[] encode(TpProtocol.Message m) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        TpProtocol.write(new DataOutputStream(bytes), m);
        return bytes.toByteArray();
    }

    static TpProtocol.Message decode(byte[] b) throws IOException {
        return TpProtocol.read(new DataInputStream(new ByteArrayInputStream(b)));
    }

    static SchedulerOutput step() {
        return new SchedulerOutput(List.of(
                new ScheduledSequence(3, new int[] {5, 6, 7}, 0, 0, new int[] {9}, true),
                new ScheduledSequence(4, new int[] {8}, 16, 0, new int[] {2, 5}, false),
                new ScheduledSequence(7, new int[] {1, 2}, 0, 0, new int[] {4}, true)), new int[] {1}, false);
    }

    @Test
    void framesRoundTripWithTokensIdsAndPlan() throws IOException {
        SchedulerOutput s = step();
        TpProtocol.TokenStep back = (TpProtocol.TokenStep) decode(encode(new TpProtocol.TokenStep(s)));
        for (int i = 0; i < 3; i++) assertArrayEquals(s.sequences().get(i).tokens(), back.output().sequences().get(i).tokens());
        assertEquals(16, back.output().sequences().get(1).startPosition());
        // The tensor-parallel step still leaves token ids behind.
        TpProtocol.Step tp = (TpProtocol.Step) decode(encode(new TpProtocol.Step(s)));
        assertArrayEquals(new int[3], tp.output().sequences().get(0).tokens());

        TpProtocol.StepResult r = (TpProtocol.StepResult) decode(encode(new TpProtocol.StepResult(new int[] {-1, 0, 511}, new float[] {1.5f, -2})));
        assertArrayEquals(new int[] {-1, 0, 511}, r.ids());
        assertArrayEquals(new float[] {1.5f, -2}, r.logits());

        TpProtocol.ExpertPlan p = (TpProtocol.ExpertPlan) decode(encode(new TpProtocol.ExpertPlan("coherent", 16, 2, 4, new int[] {0, 0, 1, 1, 1, 0, 1, 0})));
        assertEquals(16, p.maxLogitRows());
        assertArrayEquals(new int[] {0, 0, 1, 1, 1, 0, 1, 0}, p.deviceOfExpert());
    }

    @Test
    void badFramesAreRefusedWithTheReason() throws IOException {
        TpProtocol.ProtocolException e = assertThrows(TpProtocol.ProtocolException.class,
                () -> decode(encode(new TpProtocol.ExpertPlan("coherent", 16, 2, 4, new int[] {0, 1, 0}))));
        assertTrue(e.getMessage().contains("3 expert devices for 2 x 4 experts"), e.getMessage());
        byte[] b = encode(new TpProtocol.TokenStep(step()));
        b[b.length - 20] ^= 0x40;  // a flipped bit in the payload
        assertTrue(assertThrows(TpProtocol.ProtocolException.class, () -> decode(b)).getMessage().contains("CRC-32"));
        SchedulerOutput negative = new SchedulerOutput(List.of(new ScheduledSequence(1, new int[] {-4}, 0, 0, new int[] {0}, true)), new int[0], true);
        assertTrue(assertThrows(TpProtocol.ProtocolException.class, () -> decode(encode(new TpProtocol.TokenStep(negative))))
                .getMessage().contains("token id -4"));
    }

    @Test
    void aSequenceRunsOnTheDeviceOfItsFirstBlockAndKeepsItsRowsAndLogitOrder() {
        try (CpuBackend backend = new CpuBackend(1)) {
            StepInputs inputs = new StepInputs(backend.allocateKvBlocks(1, 1, 4, 16, 12, KvCacheType.F32));
            SchedulerOutput s = step();
            StepInputs.Rows all = inputs.apply(s);
            int[] owner = DeviceRows.owners(s, all, 2);
            assertArrayEquals(new int[] {1, 0, 0}, owner);  // first blocks 9, 2, 4
            StepInputs.Rows zero = DeviceRows.select(s, all, owner, 0);
            assertArrayEquals(new int[] {8, 1, 2}, zero.tokens());
            assertArrayEquals(new int[] {16, 0, 1}, zero.batch().positions());
            assertArrayEquals(new int[] {2}, zero.logitRows());
            StepInputs.Rows one = DeviceRows.select(s, all, owner, 1);
            assertArrayEquals(new int[] {5, 6, 7}, one.tokens());
            assertArrayEquals(new int[] {2}, one.logitRows());
            assertArrayEquals(new int[] {1}, DeviceRows.logitRowsOf(s, owner, 0));
            assertArrayEquals(new int[] {0}, DeviceRows.logitRowsOf(s, owner, 1));
            assertEquals(0, DeviceRows.select(s, all, owner, 3).batch().numTokens());
            inputs.clear();
            inputs.store().close();
        }
    }
}
