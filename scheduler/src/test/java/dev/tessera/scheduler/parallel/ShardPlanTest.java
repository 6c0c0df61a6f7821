package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.RopeTable;
import dev.tessera.models.arch.Architecture;
import dev.tessera.models.arch.ModelConfig;
import org.junit.jupiter.api.Test;

import dev.tessera.scheduler.sched.SchedulerOutput;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ShardPlanTest {
    static ModelConfig config(int heads, int kvHeads, int headDim, int hidden) {
        return new ModelConfig(Architecture.find("llama"), heads * headDim, hidden, 2, heads, kvHeads, headDim, 100, 64, 1e-5f,
                RopeTable.of(headDim, 10000, null, 1, false));
    }

    @Test
    void splitsWholeKvGroupsAndFfnColumnsInProportion() {
        ShardPlan p = ShardPlan.of(config(32, 8, 128, 11008), new int[]{1, 1, 2}, 32, 32);
        assertArrayEquals(new int[]{0, 2, 4, 8}, p.kvHeadStart());
        assertEquals(16, p.numHeads(2));
        assertEquals(16, p.headStart(2));
        // 344 blocks of 32 columns: 86, 86, 172.
        assertArrayEquals(new int[]{0, 2752, 5504, 11008}, p.ffnStart());
    }

    @Test
    void remaindersGoToTheLargestFractionAndAWeakDeviceMayGetNothing() {
        assertArrayEquals(new int[]{0, 1, 2, 3, 4}, ShardPlan.split(4, new int[]{2, 1, 1, 1}));
        assertArrayEquals(new int[]{0, 0, 4}, ShardPlan.split(4, new int[]{1, 100}));
        assertArrayEquals(new int[]{0, 43, 86, 172}, ShardPlan.split(172, new int[]{1, 1, 2}));
    }

    @Test
    void badInputsAreOneLineErrors() {
        assertThrows(IllegalArgumentException.class, () -> ShardPlan.parseWeights("1,x"));
        assertThrows(IllegalArgumentException.class, () -> ShardPlan.parseWeights("1,0"));
        var e = assertThrows(IllegalArgumentException.class, () -> ShardPlan.of(config(8, 4, 8, 172), new int[]{1, 1}, 32, 32));
        assertTrue(e.getMessage().contains("not a multiple of its block size 32"), e.getMessage());
    }

    @Test
    void protocolFramesRoundTripAndGarbageIsRejected() throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        TpProtocol.Hello hello = new TpProtocol.Hello(TpProtocol.VERSION, 2, 3, "abc", "plan", "star", 256, 40, 16, "f16");
        TpProtocol.write(out, hello);
        SchedulerOutput step = new SchedulerOutput(List.of(
                new SchedulerOutput.ScheduledSequence(4, new int[7], 100, 6, new int[]{9, 3}, true),
                new SchedulerOutput.ScheduledSequence(5, new int[1], 20, 0, new int[0], false)), new int[]{2}, false);
        TpProtocol.write(out, new TpProtocol.Step(step));
        DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes.toByteArray()));
        assertEquals(hello, TpProtocol.read(in));
        SchedulerOutput got = ((TpProtocol.Step) TpProtocol.read(in)).output();
        assertEquals(2, got.sequences().size());
        assertEquals(8, got.numTokens());
        assertArrayEquals(new int[]{2}, got.released());
        var first = got.sequences().getFirst();
        assertEquals(List.of(4, 100, 6, true), List.of(first.id(), first.startPosition(), first.tableFrom(), first.needsLogits()));
        assertArrayEquals(new int[]{9, 3}, first.newBlocks());
        assertArrayEquals(new int[7], first.tokens(), "token ids never travel to workers");

        ByteArrayOutputStream badRank = new ByteArrayOutputStream();
        TpProtocol.write(new DataOutputStream(badRank), new TpProtocol.Hello(TpProtocol.VERSION, 9, 3, "abc", "plan", "star", 256, 40, 16, "f16"));
        var e = assertThrows(TpProtocol.ProtocolException.class, () -> TpProtocol.read(new DataInputStream(new ByteArrayInputStream(badRank.toByteArray()))));
        assertEquals("rank 9 outside a group of 3", e.getMessage());
        byte[] badMagic = bytes.toByteArray().clone();
        badMagic[0] = 0;
        assertThrows(TpProtocol.ProtocolException.class, () -> TpProtocol.read(new DataInputStream(new ByteArrayInputStream(badMagic))));
        byte[] flipped = bytes.toByteArray().clone();
        flipped[flipped.length - 9] ^= 1;  // a bit of the step's payload: the CRC no longer matches
        DataInputStream corrupt = new DataInputStream(new ByteArrayInputStream(flipped));
        TpProtocol.read(corrupt);
        e = assertThrows(TpProtocol.ProtocolException.class, () -> TpProtocol.read(corrupt));
        assertTrue(e.getMessage().contains("CRC-32"), e.getMessage());
        ByteArrayOutputStream empty = new ByteArrayOutputStream();
        TpProtocol.write(new DataOutputStream(empty), new TpProtocol.Step(new SchedulerOutput(List.of(), new int[0], false)));
        e = assertThrows(TpProtocol.ProtocolException.class, () -> TpProtocol.read(new DataInputStream(new ByteArrayInputStream(empty.toByteArray()))));
        assertEquals("sequences 0 outside 1..65536", e.getMessage());
    }
}
