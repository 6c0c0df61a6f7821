package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.RopeTable;
import dev.tessera.models.arch.Architecture;
import dev.tessera.models.arch.ModelConfig;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;

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
        TpProtocol.write(out, new TpProtocol.Hello(TpProtocol.VERSION, 2, 3, "abc", "plan", "star", 256));
        TpProtocol.write(out, new TpProtocol.Step(7, 100));
        DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes.toByteArray()));
        assertEquals(new TpProtocol.Hello(TpProtocol.VERSION, 2, 3, "abc", "plan", "star", 256), TpProtocol.read(in));
        assertEquals(new TpProtocol.Step(7, 100), TpProtocol.read(in));

        byte[] badRank = bytes.toByteArray().clone();
        badRank[9 + 7] = 9; // rank field of the hello (after magic, type, length, version) = 9, outside a group of 3
        var e = assertThrows(TpProtocol.ProtocolException.class, () -> TpProtocol.read(new DataInputStream(new ByteArrayInputStream(badRank))));
        assertEquals("rank 9 outside a group of 3", e.getMessage());
        byte[] badMagic = bytes.toByteArray().clone();
        badMagic[0] = 0;
        assertThrows(TpProtocol.ProtocolException.class, () -> TpProtocol.read(new DataInputStream(new ByteArrayInputStream(badMagic))));
        ByteArrayOutputStream step = new ByteArrayOutputStream();
        TpProtocol.write(new DataOutputStream(step), new TpProtocol.Step(0, 0));
        e = assertThrows(TpProtocol.ProtocolException.class, () -> TpProtocol.read(new DataInputStream(new ByteArrayInputStream(step.toByteArray()))));
        assertEquals("token rows 0 outside 1..65536", e.getMessage());
    }
}
