package dev.tessera.kernels.cpu.rows;

import dev.tessera.kernels.TensorType;
import jdk.incubator.vector.ShortVector;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.EnumSet;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each format is checked against a small encoder written here from ggml's block layouts (the kernels package cannot
 * see the models quantizers): integer quants and scales are packed into bytes, and dequantize must return exactly
 * d * q (etc.); then vector dot, scalar dot and a double-precision dot over the dequantized row must agree.
 */
class RowKernelsTest {
    private static final EnumSet<TensorType> COMPUTABLE = EnumSet.of(TensorType.F32, TensorType.F16, TensorType.BF16,
            TensorType.Q8_0, TensorType.Q4_0, TensorType.Q4_1, TensorType.Q5_0, TensorType.Q5_1,
            TensorType.Q2_K, TensorType.Q3_K, TensorType.Q4_K, TensorType.Q5_K, TensorType.Q6_K, TensorType.IQ4_NL, TensorType.IQ4_XS);

    /** A row's bytes and the values it must decode to. */
    record Encoded(byte[] bytes, float[] values) {}

    // ---- encoders: integer quants in, ggml block bytes and exact expected values out ----

    private static ByteBuffer buffer(TensorType type, int n) {
        return ByteBuffer.allocate((int) type.byteSize(n)).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** A random half-precision block scale in [lo, hi). */
    private static short half(Random r, float lo, float hi) {
        return Float.floatToFloat16(lo + (hi - lo) * r.nextFloat());
    }

    static Encoded encode(TensorType type, int n, Random r) {
        ByteBuffer buf = buffer(type, n);
        float[] v = new float[n];
        switch (type) {
            case F32 -> {
                for (int i = 0; i < n; i++) { v[i] = (float) r.nextGaussian(); buf.putFloat(v[i]); }
            }
            case F16 -> {
                for (int i = 0; i < n; i++) {
                    short h = Float.floatToFloat16((float) r.nextGaussian() * (i % 7 == 0 ? 1e-5f : 1f));
                    buf.putShort(h);
                    v[i] = Float.float16ToFloat(h);
                }
            }
            case BF16 -> {
                for (int i = 0; i < n; i++) {
                    short h = (short) (Float.floatToRawIntBits((float) r.nextGaussian()) >>> 16);
                    buf.putShort(h);
                    v[i] = Float.intBitsToFloat((h & 0xffff) << 16);
                }
            }
            case Q8_0 -> {
                for (int b = 0; b < n / 32; b++) {
                    short dh = half(r, -0.05f, 0.05f);
                    float d = Float.float16ToFloat(dh);
                    buf.putShort(dh);
                    for (int j = 0; j < 32; j++) {
                        int q = r.nextInt(256) - 128;
                        buf.put((byte) q);
                        v[32 * b + j] = q * d;
                    }
                }
            }
            case Q4_0, Q4_1, Q5_0, Q5_1 -> encodeLegacy(type, n, r, buf, v);
            case Q4_K, Q5_K -> encodeQ4Q5K(type, n, r, buf, v);
            case Q6_K -> encodeQ6K(n, r, buf, v);
            case Q2_K -> encodeQ2K(n, r, buf, v);
            case Q3_K -> encodeQ3K(n, r, buf, v);
            case IQ4_NL, IQ4_XS -> encodeIQ4(type, n, r, buf, v);
            default -> throw new IllegalArgumentException(type.toString());
        }
        assertEquals(buf.capacity(), buf.position(), "encoder filled the row");
        return new Encoded(buf.array(), v);
    }

    private static void encodeLegacy(TensorType type, int n, Random r, ByteBuffer buf, float[] v) {
        boolean fiveBit = type == TensorType.Q5_0 || type == TensorType.Q5_1;
        boolean withMin = type == TensorType.Q4_1 || type == TensorType.Q5_1;
        int offset = fiveBit ? 16 : 8;
        for (int b = 0; b < n / 32; b++) {
            int[] q = new int[32];
            for (int j = 0; j < 32; j++) q[j] = r.nextInt(fiveBit ? 32 : 16);
            short dh = half(r, -0.1f, 0.1f);
            short mh = half(r, -1f, 1f);
            float d = Float.float16ToFloat(dh), m = Float.float16ToFloat(mh);
            buf.putShort(dh);
            if (withMin) buf.putShort(mh);
            if (fiveBit) {
                int qh = 0;
                for (int j = 0; j < 32; j++) qh |= (q[j] >> 4) << j;
                buf.putInt(qh);
            }
            for (int j = 0; j < 16; j++) buf.put((byte) ((q[j] & 15) | (q[j + 16] & 15) << 4));
            for (int j = 0; j < 32; j++) v[32 * b + j] = withMin ? q[j] * d + m : (q[j] - offset) * d;
        }
    }

    /** ggml's kvalues_iq4nl, written out again so the kernel's table is checked too. */
    private static final int[] IQ4_LEVELS = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

    /** IQ4_NL: f16 d, 16 index bytes per 32 values. IQ4_XS: f16 d, u16 scales_h, u8 scales_l[4], then eight such 16 bytes. */
    private static void encodeIQ4(TensorType type, int n, Random r, ByteBuffer buf, float[] v) {
        boolean xs = type == TensorType.IQ4_XS;
        for (int b = 0; b < n / type.blockSize; b++) {
            short dh = half(r, -0.01f, 0.01f);
            float d = Float.float16ToFloat(dh);
            buf.putShort(dh);
            int subBlocks = xs ? 8 : 1;
            float[] dl = new float[subBlocks];
            if (xs) {
                int[] ls = new int[8];
                int high = 0;
                for (int j = 0; j < 8; j++) { ls[j] = r.nextInt(64); high |= (ls[j] >> 4) << 2 * j; dl[j] = d * (ls[j] - 32); }
                buf.putShort((short) high);
                for (int j = 0; j < 8; j += 2) buf.put((byte) ((ls[j] & 15) | (ls[j + 1] & 15) << 4));
            } else {
                dl[0] = d;
            }
            for (int j = 0; j < subBlocks; j++) {
                int base = b * type.blockSize + 32 * j;
                for (int l = 0; l < 16; l++) {
                    int lo = r.nextInt(16), hi = r.nextInt(16);
                    buf.put((byte) (lo | hi << 4));
                    v[base + l] = dl[j] * IQ4_LEVELS[lo];
                    v[base + 16 + l] = dl[j] * IQ4_LEVELS[hi];
                }
            }
        }
    }

    private static void encodeQ4Q5K(TensorType type, int n, Random r, ByteBuffer buf, float[] v) {
        boolean fiveBit = type == TensorType.Q5_K;
        for (int b = 0; b < n / 256; b++) {
            int[] sc = new int[8], mn = new int[8], q = new int[256];
            for (int j = 0; j < 8; j++) { sc[j] = r.nextInt(64); mn[j] = r.nextInt(64); }
            for (int i = 0; i < 256; i++) q[i] = r.nextInt(fiveBit ? 32 : 16);
            short dh = half(r, 0f, 0.01f), dminh = half(r, 0f, 0.02f);
            buf.putShort(dh).putShort(dminh);
            byte[] s = new byte[12];
            for (int j = 0; j < 8; j++) {
                if (j < 4) {
                    s[j] = (byte) sc[j];
                    s[j + 4] = (byte) mn[j];
                } else {
                    s[j + 4] = (byte) ((sc[j] & 15) | (mn[j] & 15) << 4);
                    s[j - 4] |= (byte) ((sc[j] >> 4) << 6);
                    s[j] |= (byte) ((mn[j] >> 4) << 6);
                }
            }
            buf.put(s);
            if (fiveBit) {
                for (int l = 0; l < 32; l++) {
                    int h = 0;
                    for (int c = 0; c < 4; c++) h |= (q[64 * c + l] >> 4) << (2 * c) | (q[64 * c + 32 + l] >> 4) << (2 * c + 1);
                    buf.put((byte) h);
                }
            }
            for (int c = 0; c < 4; c++)
                for (int l = 0; l < 32; l++) buf.put((byte) ((q[64 * c + l] & 15) | (q[64 * c + 32 + l] & 15) << 4));
            float d = Float.float16ToFloat(dh), dmin = Float.float16ToFloat(dminh);
            for (int i = 0; i < 256; i++) {
                int j = i / 32;
                v[256 * b + i] = d * sc[j] * q[i] - dmin * mn[j];
            }
        }
    }

    private static void encodeQ6K(int n, Random r, ByteBuffer buf, float[] v) {
        for (int b = 0; b < n / 256; b++) {
            int[] q = new int[256];
            byte[] sc = new byte[16];
            for (int i = 0; i < 256; i++) q[i] = r.nextInt(64);
            r.nextBytes(sc);
            for (int h = 0; h < 2; h++)
                for (int l = 0; l < 32; l++) buf.put((byte) ((q[128 * h + l] & 15) | (q[128 * h + 64 + l] & 15) << 4));
            // ql above holds values l and l+64 of each half; the second 32 bytes hold l+32 and l+96
            buf.position(buf.position() - 64);
            for (int h = 0; h < 2; h++) {
                for (int l = 0; l < 32; l++) buf.put((byte) ((q[128 * h + l] & 15) | (q[128 * h + 64 + l] & 15) << 4));
                for (int l = 0; l < 32; l++) buf.put((byte) ((q[128 * h + 32 + l] & 15) | (q[128 * h + 96 + l] & 15) << 4));
            }
            for (int h = 0; h < 2; h++)
                for (int l = 0; l < 32; l++) {
                    int k = 128 * h + l;
                    buf.put((byte) ((q[k] >> 4) | (q[k + 32] >> 4) << 2 | (q[k + 64] >> 4) << 4 | (q[k + 96] >> 4) << 6));
                }
            buf.put(sc);
            short dh = half(r, -0.002f, 0.002f);
            buf.putShort(dh);
            float d = Float.float16ToFloat(dh);
            for (int i = 0; i < 256; i++) v[256 * b + i] = d * sc[i / 16] * (q[i] - 32);
        }
    }

    /** Value 128c + 32j + 16h + l of a Q2_K/Q3_K block is the 2-bit field j of qs[32c + 16h + l]. */
    private static byte[] twoBitFields(int[] low) {
        byte[] qs = new byte[64];
        for (int i = 0; i < 256; i++) {
            int c = i / 128, j = i % 128 / 32, h = i % 32 / 16, l = i % 16;
            qs[32 * c + 16 * h + l] |= (byte) (low[i] << 2 * j);
        }
        return qs;
    }

    private static void encodeQ2K(int n, Random r, ByteBuffer buf, float[] v) {
        for (int b = 0; b < n / 256; b++) {
            int[] sc = new int[16], mn = new int[16], q = new int[256];
            for (int s = 0; s < 16; s++) { sc[s] = r.nextInt(16); mn[s] = r.nextInt(16); buf.put((byte) (sc[s] | mn[s] << 4)); }
            for (int i = 0; i < 256; i++) q[i] = r.nextInt(4);
            buf.put(twoBitFields(q));
            short dh = half(r, 0f, 0.02f), dminh = half(r, 0f, 0.02f);
            buf.putShort(dh).putShort(dminh);
            float d = Float.float16ToFloat(dh), dmin = Float.float16ToFloat(dminh);
            for (int i = 0; i < 256; i++) v[256 * b + i] = d * sc[i / 16] * q[i] - dmin * mn[i / 16];
        }
    }

    private static void encodeQ3K(int n, Random r, ByteBuffer buf, float[] v) {
        for (int b = 0; b < n / 256; b++) {
            int[] sc = new int[16], q = new int[256], low = new int[256];
            byte[] hmask = new byte[32], scales = new byte[12];
            for (int i = 0; i < 256; i++) {
                q[i] = r.nextInt(8) - 4;
                low[i] = (q[i] + 4) & 3;
                int c = i / 128, j = i % 128 / 32, h = i % 32 / 16, l = i % 16;
                hmask[16 * h + l] |= (byte) (((q[i] + 4) >> 2) << (4 * c + j));  // the high bit is set for q >= 0
            }
            // Scale s: low nibble in byte s % 8 (high nibble for s >= 8), top two bits at bits 2 (s / 4) of byte 8 + s % 4.
            for (int s = 0; s < 16; s++) {
                sc[s] = r.nextInt(64);
                scales[s % 8] |= (byte) ((sc[s] & 15) << (s < 8 ? 0 : 4));
                scales[8 + s % 4] |= (byte) ((sc[s] >> 4) << 2 * (s / 4));
            }
            buf.put(hmask).put(twoBitFields(low)).put(scales);
            short dh = half(r, -0.002f, 0.002f);
            buf.putShort(dh);
            float d = Float.float16ToFloat(dh);
            for (int i = 0; i < 256; i++) v[256 * b + i] = d * (sc[i / 16] - 32) * q[i];
        }
    }

    /** The encoded row copied into a native segment at an odd byte offset, as an mmapped GGUF tensor may sit. */
    private static MemorySegment place(byte[] bytes, int offset) {
        MemorySegment seg = java.lang.foreign.Arena.ofAuto().allocate(bytes.length + offset + 64, 1);
        MemorySegment.copy(bytes, 0, seg, java.lang.foreign.ValueLayout.JAVA_BYTE, offset, bytes.length);
        return seg;
    }

    private static int[] lengths(TensorType type) {
        int bs = type.blockSize;
        if (bs == 1) return new int[] {1, 7, 16, 17, 31, 64, 100, 2048, 8192};
        return new int[] {bs, 2 * bs, 3 * bs, 7 * bs, 2048, 8192};
    }

    @Test
    void dequantizeReturnsTheEncodedValuesExactly() {
        Random r = new Random(1);
        for (TensorType type : COMPUTABLE) {
            RowKernel k = RowKernels.forType(type);
            for (int n : lengths(type)) {
                Encoded e = encode(type, n, r);
                MemorySegment w = place(e.bytes(), 3);
                float[] out = new float[n + 5];
                k.dequantize(w, 3, out, 5, n);
                float[] got = java.util.Arrays.copyOfRange(out, 5, n + 5);
                assertArrayEquals(e.values(), got, 0f, type + " n=" + n);
            }
        }
    }

    @Test
    void vectorDotMatchesScalarDotAndDequantizedDot() {
        Random r = new Random(2);
        for (TensorType type : COMPUTABLE) {
            RowKernel k = RowKernels.forType(type);
            for (int n : lengths(type)) {
                for (int trial = 0; trial < 3; trial++) {
                    Encoded e = encode(type, n, r);
                    MemorySegment w = place(e.bytes(), 1 + trial);
                    float[] x = new float[n + 3];
                    for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                    double ref = 0, mag = 0;
                    for (int i = 0; i < n; i++) {
                        ref += (double) e.values()[i] * x[3 + i];
                        mag += Math.abs((double) e.values()[i] * x[3 + i]);
                    }
                    double tol = 1e-4 * mag + 1e-30;
                    float vec = k.dot(w, 1 + trial, x, 3, n);
                    float sca = k.dotScalar(w, 1 + trial, x, 3, n);
                    String where = type + " n=" + n + " trial=" + trial;
                    assertEquals(ref, vec, tol, "vector dot, " + where);
                    assertEquals(ref, sca, tol, "scalar dot, " + where);
                    assertEquals(sca, vec, tol, "vector vs scalar, " + where);
                }
            }
        }
    }

    @Test
    void dotOfZeroRowIsZeroAndDotIsLinearInX() {
        Random r = new Random(3);
        for (TensorType type : COMPUTABLE) {
            RowKernel k = RowKernels.forType(type);
            int n = 512;
            Encoded e = encode(type, n, r);
            MemorySegment w = place(e.bytes(), 0);
            float[] x = new float[n];
            for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian();
            float[] x2 = x.clone();
            for (int i = 0; i < n; i++) x2[i] *= 2f;
            float a = k.dot(w, 0, x, 0, n), b = k.dot(w, 0, x2, 0, n);
            assertEquals(2f * a, b, 1e-5f * Math.abs(b) + 1e-6f, type.toString());
            MemorySegment zero = place(new byte[(int) type.byteSize(n)], 0);
            assertEquals(0f, k.dot(zero, 0, x, 0, n), type.toString());
        }
    }

    @Test
    void handBuiltQ4_0Block() {
        // d = 2.0 (f16 0x4000); qs[j] = j | (15 - j) << 4 → value j is 2(j - 8), value 16 + j is 2(7 - j)
        byte[] block = new byte[18];
        block[0] = 0x00;
        block[1] = 0x40;
        for (int j = 0; j < 16; j++) block[2 + j] = (byte) (j | (15 - j) << 4);
        float[] out = new float[32];
        RowKernels.forType(TensorType.Q4_0).dequantize(place(block, 0), 0, out, 0, 32);
        for (int j = 0; j < 16; j++) {
            assertEquals(2f * (j - 8), out[j]);
            assertEquals(2f * (7 - j), out[16 + j]);
        }
        float[] ones = new float[32];
        java.util.Arrays.fill(ones, 1f);
        assertEquals(-32f, RowKernels.forType(TensorType.Q4_0).dot(place(block, 0), 0, ones, 0, 32));
    }

    @Test
    void handBuiltQ8_0AndQ5_0Blocks() {
        byte[] q8 = new byte[34];
        q8[0] = 0x00;
        q8[1] = 0x38; // d = 0.5
        for (int j = 0; j < 32; j++) q8[2 + j] = (byte) (j - 16);
        float[] out = new float[32];
        RowKernels.forType(TensorType.Q8_0).dequantize(place(q8, 0), 0, out, 0, 32);
        for (int j = 0; j < 32; j++) assertEquals(0.5f * (j - 16), out[j]);

        // Q5_0 with d = 1, all nibbles 0, qh = 0x80000001 → value 0 is 16 - 16 = 0, value 31 is 0, the rest -16
        byte[] q5 = new byte[22];
        q5[1] = 0x3c;
        q5[2] = 0x01;
        q5[5] = (byte) 0x80;
        RowKernels.forType(TensorType.Q5_0).dequantize(place(q5, 0), 0, out, 0, 32);
        for (int j = 0; j < 32; j++) assertEquals(j == 0 || j == 31 ? 0f : -16f, out[j], "j=" + j);
    }

    @Test
    void handBuiltQ4_KUsesUpperScaleBits() {
        // Sub-block 5: scale 0b110011 = 51 (low 4 bits in scales[9], high 2 bits in scales[1] bits 6-7),
        // min 0b100001 = 33 (low 4 bits in scales[9] high nibble, high 2 bits in scales[5] bits 6-7).
        byte[] block = new byte[144];
        block[1] = 0x3c; // d = 1
        block[3] = 0x38; // dmin = 0.5
        block[4 + 1] = (byte) (0b11 << 6);
        block[4 + 5] = (byte) (0b10 << 6);
        block[4 + 9] = (byte) (0b0011 | 0b0001 << 4);
        // values 160..191 are sub-block 5: the high nibbles of qs[64..96)
        for (int l = 0; l < 32; l++) block[16 + 64 + l] = (byte) 0x70;
        float[] out = new float[256];
        RowKernels.forType(TensorType.Q4_K).dequantize(place(block, 0), 0, out, 0, 256);
        for (int i = 160; i < 192; i++) assertEquals(51f * 7 - 0.5f * 33, out[i], "i=" + i);
        // sub-block 1 got scale 0 / min 0 from scales[1] & 63 = 0 and scales[5] & 63 = 0
        for (int i = 32; i < 64; i++) assertEquals(0f, out[i], "i=" + i);
    }

    @Test
    void handBuiltQ6_KBlock() {
        // d = 1, scales[i] = i + 1; value i has q such that q - 32 = (i % 64) - 32
        byte[] block = new byte[210];
        int[] q = new int[256];
        for (int i = 0; i < 256; i++) q[i] = i % 64;
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                int k = 128 * h + l;
                block[64 * h + l] = (byte) ((q[k] & 15) | (q[k + 64] & 15) << 4);
                block[64 * h + 32 + l] = (byte) ((q[k + 32] & 15) | (q[k + 96] & 15) << 4);
                block[128 + 32 * h + l] = (byte) ((q[k] >> 4) | (q[k + 32] >> 4) << 2 | (q[k + 64] >> 4) << 4 | (q[k + 96] >> 4) << 6);
            }
        for (int i = 0; i < 16; i++) block[192 + i] = (byte) (i + 1);
        block[209] = 0x3c;
        float[] out = new float[256];
        RowKernels.forType(TensorType.Q6_K).dequantize(place(block, 0), 0, out, 0, 256);
        for (int i = 0; i < 256; i++) assertEquals((float) (i / 16 + 1) * (i % 64 - 32), out[i], "i=" + i);
    }

    @Test
    void vectorHalfToFloatMatchesFloat16ToFloatForAllHalves() {
        short[] halves = new short[65536];
        for (int i = 0; i < halves.length; i++) halves[i] = (short) i;
        float[] got = new float[VectorLanes.L];
        for (int i = 0; i < halves.length; i += VectorLanes.L) {
            VectorLanes.halfToFloat(ShortVector.fromArray(VectorLanes.S, halves, i)).intoArray(got, 0);
            for (int k = 0; k < VectorLanes.L; k++) {
                float want = Float.float16ToFloat(halves[i + k]);
                if (Float.isNaN(want)) assertTrue(Float.isNaN(got[k]), "half 0x" + Integer.toHexString(i + k));
                else assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(got[k]), "half 0x" + Integer.toHexString(i + k));
            }
        }
    }

    @Test
    void nonComputableTypesAreRejected() {
        for (TensorType type : TensorType.values()) {
            if (COMPUTABLE.contains(type)) continue;
            assertThrows(IllegalArgumentException.class, () -> RowKernels.forType(type), type.toString());
        }
    }
}
