package dev.tessera.offload;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.nio.ByteBuffer;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Frames, messages and the head plan: round trips, and every kind of bad input refused with one line. */
class OffloadProtocolTest {
    static byte[] frame(OffloadProtocol.Type type, ByteBuffer payload) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        OffloadProtocol.write(out, type, payload);
        return out.toByteArray();
    }

    static OffloadProtocol.Frame read(byte[] bytes) throws Exception {
        return OffloadProtocol.read(new DataInputStream(new ByteArrayInputStream(bytes)));
    }

    static Hello hello(int from, int to) {
        return new Hello(OffloadProtocol.VERSION, "m", 5, 8, 4, 8, from, to, 64, WireFormat.F16);
    }

    @Test
    void helloAndStepRoundTrip() throws Exception {
        Hello h = hello(1, 3);
        assertEquals(h, Hello.decode(read(frame(OffloadProtocol.Type.HELLO, h.encode())).expect(OffloadProtocol.Type.HELLO).payload()));
        AttentionStep s = new AttentionStep(List.of(new AttentionStep.Sequence(7, 3, 16, 1, new int[]{4, 9}),
                new AttentionStep.Sequence(2, 1, 40, 0, new int[0])), new int[]{5, 6});
        AttentionStep back = AttentionStep.decode(read(frame(OffloadProtocol.Type.STEP, s.encode())).payload(), 64, 10);
        assertEquals(4, back.numRows());
        assertArrayEquals(new int[]{4, 9}, back.sequences().getFirst().newBlocks());
        assertArrayEquals(new int[]{5, 6}, back.released());
    }

    @Test
    void corruptFramesAreRefused() throws Exception {
        byte[] good = frame(OffloadProtocol.Type.HELLO, hello(0, 4).encode());
        byte[] flipped = good.clone();
        flipped[20] ^= 1;
        assertTrue(assertThrows(OffloadProtocol.ProtocolException.class, () -> read(flipped)).getMessage().contains("CRC-32"));
        byte[] magic = good.clone();
        magic[0] = 'X';
        assertTrue(assertThrows(OffloadProtocol.ProtocolException.class, () -> read(magic)).getMessage().contains("magic"));
        byte[] huge = good.clone();
        ByteBuffer.wrap(huge).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(5, Integer.MAX_VALUE);
        assertTrue(assertThrows(OffloadProtocol.ProtocolException.class, () -> read(huge)).getMessage().contains("limit"));
        byte[] type = good.clone();
        type[4] = 99;
        assertTrue(assertThrows(OffloadProtocol.ProtocolException.class, () -> read(type)).getMessage().contains("unknown frame type"));
        assertThrows(java.io.EOFException.class, () -> read(java.util.Arrays.copyOf(good, good.length - 2)));
    }

    @Test
    void inconsistentHeadPlansAreRefused() {
        assertTrue(assertThrows(OffloadProtocol.ProtocolException.class, () -> Hello.decode(hello(3, 5).encode().flip()))
                .getMessage().contains("kvHeadTo 5 outside"));
        assertTrue(assertThrows(OffloadProtocol.ProtocolException.class, () -> Hello.decode(hello(2, 2).encode().flip()))
                .getMessage().contains("kvHeadTo"));
        Hello odd = new Hello(OffloadProtocol.VERSION, "m", 5, 8, 3, 8, 0, 1, 64, WireFormat.F16);
        assertTrue(assertThrows(OffloadProtocol.ProtocolException.class, () -> Hello.decode(odd.encode().flip())).getMessage().contains("multiple"));
        Hello future = new Hello(OffloadProtocol.VERSION + 1, "m", 5, 8, 4, 8, 0, 1, 64, WireFormat.F16);
        assertTrue(assertThrows(OffloadProtocol.ProtocolException.class, () -> Hello.decode(future.encode().flip())).getMessage().contains("version"));
    }

    @Test
    void stepsWithAbsurdSizesAreRefused() {
        AttentionStep tooMany = new AttentionStep(List.of(new AttentionStep.Sequence(1, 100, 0, 0, new int[]{0})), new int[0]);
        assertTrue(assertThrows(OffloadProtocol.ProtocolException.class, () -> AttentionStep.decode(tooMany.encode().flip(), 64, 10))
                .getMessage().contains("row count"));
        AttentionStep badBlock = new AttentionStep(List.of(new AttentionStep.Sequence(1, 1, 0, 0, new int[]{10})), new int[0]);
        assertTrue(assertThrows(OffloadProtocol.ProtocolException.class, () -> AttentionStep.decode(badBlock.encode().flip(), 64, 10))
                .getMessage().contains("block id 10"));
        ByteBuffer truncated = payloadOf(OffloadProtocol.payload(8).putInt(1).putInt(3));
        assertTrue(assertThrows(OffloadProtocol.ProtocolException.class, () -> AttentionStep.decode(truncated, 64, 10)).getMessage().contains("frame ends"));
    }

    @Test
    void headsAreSplitByWeightWithAtLeastOneEach() {
        HeadPlan even = HeadPlan.split(32, 8, new int[]{1, 1});
        assertEquals(4, even.numKvHeads(0));
        assertEquals(16, even.headFrom(1));
        HeadPlan weighted = HeadPlan.split(32, 8, new int[]{1, 3});
        assertEquals(2, weighted.numKvHeads(0));
        assertEquals(6, weighted.numKvHeads(1));
        HeadPlan skewed = HeadPlan.split(8, 4, new int[]{100, 1, 1});
        assertEquals(4, skewed.numKvHeads(0) + skewed.numKvHeads(1) + skewed.numKvHeads(2));
        for (int i = 0; i < 3; i++) assertTrue(skewed.numKvHeads(i) >= 1);
        assertThrows(IllegalArgumentException.class, () -> HeadPlan.split(8, 2, new int[]{1, 1, 1}));
        assertThrows(IllegalArgumentException.class, () -> HeadPlan.split(8, 2, new int[]{0, 1}));
        assertThrows(IllegalArgumentException.class, () -> HeadPlan.parseWeights("1,x"));
    }

    @Test
    void wireFormatsRoundTripColumns() {
        float[] src = {1f, -2.5f, 3.25f, 9f, 0.1f, 6f};
        for (WireFormat w : WireFormat.values()) {
            ByteBuffer b = OffloadProtocol.payload((int) w.size(2, 2));
            w.put(b, src, 2, 3, 1, 3);
            b.flip();
            float[] dst = new float[6];
            w.get(b, dst, 2, 3, 1, 3);
            assertEquals(0f, dst[0]);
            assertEquals(-2.5f, dst[1]);
            assertEquals(6f, dst[5]);
            assertEquals(w == WireFormat.F32 ? 0.1f : Float.float16ToFloat(Float.floatToFloat16(0.1f)), dst[4]);
        }
    }

    private static ByteBuffer payloadOf(ByteBuffer b) {
        return b.flip();
    }
}
