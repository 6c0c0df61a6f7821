package dev.tessera.kernels.cpu.rows;

import dev.tessera.kernels.CorruptTensorException;
import dev.tessera.kernels.TensorType;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Panels decode to exactly the row layout's values (unpacked ones may turn -0 into +0, which no sum can tell apart),
 * and their 16-row dots agree with the scalar row dot; dot4 and dot8 give each token exactly what dot gives it alone.
 */
class PanelKernelTest {

    @ParameterizedTest
    @CsvSource({"Q4_0, 16, 32", "Q4_0, 48, 256", "Q4_0, 32, 2048", "Q4_1, 16, 32", "Q4_1, 48, 256", "Q4_1, 32, 2048", "Q5_0, 16, 32", "Q5_0, 48, 256", "Q5_0, 32, 2048", "Q5_1, 16, 32", "Q5_1, 48, 256", "Q5_1, 32, 2048", "Q8_0, 16, 32", "Q8_0, 48, 256", "Q8_0, 32, 2048",
            "Q4_K, 16, 256", "Q4_K, 48, 512", "Q4_K, 32, 2048", "Q5_K, 16, 256", "Q5_K, 48, 512", "Q5_K, 32, 2048", "Q3_K, 16, 256", "Q3_K, 48, 512", "Q3_K, 32, 2048", "Q2_K, 16, 256", "Q2_K, 48, 512", "Q2_K, 32, 2048", "Q6_K, 16, 256", "Q6_K, 48, 512", "Q6_K, 32, 2048",
            "IQ4_NL, 16, 32", "IQ4_NL, 48, 256", "IQ4_NL, 32, 2048", "IQ4_XS, 16, 256", "IQ4_XS, 48, 512", "IQ4_XS, 32, 2048"})
    void panelsHoldTheSameValuesAsRows(TensorType type, int rows, int cols) {
        PanelKernel panelKernel = PanelKernel.forType(type, rows, cols);
        Assumptions.assumeTrue(panelKernel != null, "needs 16-lane float vectors");
        Random random = new Random(rows * 131L + cols);
        RowKernel plain = RowKernels.forType(type);
        long rowBytes = type.byteSize(cols), panelBytes = panelKernel.panelBytes(cols);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(rowBytes * rows);
            for (long i = 0; i < data.byteSize(); i++) data.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
            // Random bytes, but finite f16 scales (d, and Q4_K/Q5_K's dmin).
            int[] halves = switch (type) {
                case Q4_K, Q5_K, Q4_1, Q5_1 -> new int[]{0, 2};
                case Q6_K -> new int[]{208};
                case Q3_K -> new int[]{108};
                case Q2_K -> new int[]{80, 82};
                default -> new int[]{0};
            };
            for (long o = 0; o < data.byteSize(); o += type.blockBytes)
                for (int h : halves)
                    data.set(ValueLayout.JAVA_SHORT_UNALIGNED, o + h, Float.floatToFloat16((float) random.nextGaussian() * 0.05f));
            MemorySegment panels = panelKernel.repack(data, rows, cols, arena);
            // Panels keep the GGUF size (Q4_K's and Q5_K's headers regrouped, not widened), except other K-quants': their
            // block headers are widened (d to floats, Q3_K's 6-bit scales to bytes and its high bits to masks, Q2_K's d and
            // dmin to floats, IQ4_XS's d to floats and scales to bytes).
            boolean kQuant = type == TensorType.Q6_K || type == TensorType.Q3_K
                    || type == TensorType.Q2_K || type == TensorType.IQ4_XS;
            assertEquals(kQuant ? rows / 16 * panelBytes : data.byteSize(), panels.byteSize());
            float[] x = new float[3 * cols];
            for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
            ActivationBlocks xBlocks = panelKernel.needsInt8() ? new ActivationBlocks().compute(x, 3, cols) : null;
            // An int8 kernel's dot is checked against the scalar dot of the x it sees (q * scale per block).
            float[] seen = panelKernel.needsInt8() ? int8Values(xBlocks, x.length) : x;
            float[] expected = new float[cols], got = new float[cols], dots = new float[rows], dots4 = new float[3 * rows];
            float[] dots8 = new float[6 * rows], sums = new float[8 * 16];
            int[] xs = {cols, 0, 2 * cols, cols, 0, 2 * cols, 2 * cols, 2 * cols};  // six tokens; the last repeats
            MemorySegment packed = arena.allocate(4L * cols * rows, 64);
            for (int p = 0; p < rows / 16; p++) {
                panelKernel.dot(panels, p * panelBytes, cols, x, cols, xBlocks, dots, p * 16);
                panelKernel.dot4(panels, p * panelBytes, cols, x, 0, cols, 2 * cols, 2 * cols, xBlocks, 3, dots4, p * 16, rows);
                panelKernel.dot8(panels, p * panelBytes, cols, x, xs, xBlocks, 6, dots8, p * 16, rows, sums);
                panelKernel.unpack(panels, p * panelBytes, 0, cols, packed, rows, p * 16);
            }
            for (int r = 0; r < rows; r++) {
                plain.dequantize(data, r * rowBytes, expected, 0, cols);
                panelKernel.dequantizeRow(panels, (r / 16) * panelBytes, r % 16, cols, got, 0);
                assertArrayEquals(expected, got, "row " + r);
                for (int k = 0; k < cols; k++) assertEquals(expected[k], packed.getAtIndex(ValueLayout.JAVA_FLOAT, (long) k * rows + r), 0f, "unpacked row " + r + " column " + k);
                float ref = plain.dotScalar(data, r * rowBytes, seen, cols, cols);
                assertEquals(ref, dots[r], 1e-4f * (1 + Math.abs(ref)) * Math.sqrt(cols), "dot row " + r);
                assertEquals(dots[r], dots4[rows + r], 0f, "dot4 token 1 row " + r);
                assertEquals(dots[r], dots8[r], 0f, "dot8 token 0 row " + r);
                assertEquals(dots[r], dots8[3 * rows + r], 0f, "dot8 token 3 row " + r);
                assertEquals(dots4[2 * rows + r], dots8[5 * rows + r], 0f, "dot8 token 5 row " + r);
            }
        }
    }

    /**
     * IQ4's largest products: every weight at level -127 and every int8 x at -127 fill the 16-bit lanes its dots and
     * GEMM sum two products in (2 * 16129); the result must still be the exact 127 * 127 per value.
     */
    @ParameterizedTest
    @CsvSource({"IQ4_NL, 48, 512", "IQ4_XS, 48, 512"})
    void iq4LargestProductsDoNotOverflow(TensorType type, int rows, int cols) {
        PanelKernel panelKernel = PanelKernel.forType(type, rows, cols);
        Assumptions.assumeTrue(panelKernel != null, "needs 16-lane float vectors");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(type.byteSize(cols) * rows);  // all indices 0: level -127
            for (long o = 0; o < data.byteSize(); o += type.blockBytes) {
                data.set(ValueLayout.JAVA_SHORT_UNALIGNED, o, Float.floatToFloat16(1f));
                if (type == TensorType.IQ4_XS) {  // every sub-block's ls = 33 (low 4 bits 1, high 2 bits 2): d * (ls - 32) = 1
                    data.set(ValueLayout.JAVA_SHORT_UNALIGNED, o + 2, (short) 0xaaaa);
                    for (int j = 0; j < 4; j++) data.set(ValueLayout.JAVA_BYTE, o + 4 + j, (byte) 0x11);
                }
            }
            MemorySegment panels = panelKernel.repack(data, rows, cols, arena);
            long panelBytes = panelKernel.panelBytes(cols);
            for (float sign : new float[]{-1f, 1f}) {  // sums of +2 * 16129 and of -2 * 16129 per lane
                int tokens = 5;
                float[] x = new float[tokens * cols];
                java.util.Arrays.fill(x, sign);
                ActivationBlocks xBlocks = new ActivationBlocks().compute(x, tokens, cols);
                float expected = -sign * cols * 127f * 127f * xBlocks.scales()[0];
                float[] dots = new float[rows], dots4 = new float[4 * rows], gemm = new float[tokens * rows];
                for (int p = 0; p < rows / 16; p++) {
                    panelKernel.dot(panels, p * panelBytes, cols, x, 0, xBlocks, dots, p * 16);
                    panelKernel.dot4(panels, p * panelBytes, cols, x, 0, cols, 2 * cols, 3 * cols, xBlocks, 4, dots4, p * 16, rows);
                }
                panelKernel.gemm(panels, panelBytes, 0, rows, cols, xBlocks, tokens, gemm, rows, arena.allocate(panelKernel.integerGemm().packBytes(), 64));
                for (int r = 0; r < rows; r++) {
                    assertEquals(expected, dots[r], Math.abs(expected) * 1e-6f, "dot row " + r);
                    assertEquals(expected, dots4[3 * rows + r], Math.abs(expected) * 1e-6f, "dot4 row " + r);
                    assertEquals(expected, gemm[4 * rows + r], Math.abs(expected) * 1e-6f, "gemm row " + r);
                }
            }
        }
    }

    /**
     * Q4_K panels widen d and dmin from f16 with shifts, which must give every finite half exactly (zeros, subnormals,
     * the largest, negatives) in the one-token dot, the batched dot and the values; a non-finite one is refused.
     */
    @Test
    void q4kHeadersWidenEveryFiniteHalfAndRefuseNonFiniteOnes() {
        int rows = 16, cols = 256;
        short[] halves = {0x0000, (short) 0x8000, 0x0001, (short) 0x83ff, 0x0400, 0x7bff, (short) 0xfbff, 0x3c00, (short) 0xbc00, 0x1234,
                0x2e66, (short) 0xa000, 0x03ff, 0x7800, 0x0200, (short) 0x8001};
        PanelKernel panelKernel = PanelKernel.forType(TensorType.Q4_K, rows, cols);
        Assumptions.assumeTrue(panelKernel != null, "needs 16-lane float vectors");
        Random random = new Random(5);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(TensorType.Q4_K.byteSize(cols) * rows);
            for (long i = 0; i < data.byteSize(); i++) data.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
            for (int r = 0; r < rows; r++) {
                data.set(ValueLayout.JAVA_SHORT_UNALIGNED, 144L * r, halves[r]);
                data.set(ValueLayout.JAVA_SHORT_UNALIGNED, 144L * r + 2, halves[(r + 5) % rows]);
            }
            MemorySegment panels = panelKernel.repack(data, rows, cols, arena);
            float[] x = new float[2 * cols];
            for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
            ActivationBlocks xBlocks = new ActivationBlocks().compute(x, 2, cols);
            float[] seen = int8Values(xBlocks, x.length), expected = new float[cols], got = new float[cols], dots = new float[rows];
            float[] dots4 = new float[2 * rows];
            panelKernel.dot(panels, 0, cols, x, 0, xBlocks, dots, 0);
            panelKernel.dot4(panels, 0, cols, x, 0, cols, cols, cols, xBlocks, 2, dots4, 0, rows);
            RowKernel plain = RowKernels.forType(TensorType.Q4_K);
            for (int r = 0; r < rows; r++) {
                plain.dequantize(data, 144L * r, expected, 0, cols);
                panelKernel.dequantizeRow(panels, 0, r, cols, got, 0);
                assertArrayEquals(expected, got, "row " + r);
                double want = 0;
                for (int k = 0; k < cols; k++) want += (double) expected[k] * seen[k];
                assertEquals(want, dots[r], 1e-3 * (1 + Math.abs(want)), "dot row " + r);
                assertEquals(dots[r], dots4[r], "dot4 row " + r);
            }
            for (short bad : new short[]{0x7c00, (short) 0xfc00, 0x7e00}) {
                data.set(ValueLayout.JAVA_SHORT_UNALIGNED, 144L * 7 + 2, bad);
                assertThrows(CorruptTensorException.class, () -> panelKernel.repack(data, rows, cols, arena));
            }
        }
    }

    /** x as an int8 kernel reads it: each value's int8 times its block's scale. */
    static float[] int8Values(ActivationBlocks blocks, int n) {
        float[] v = new float[n];
        for (int k = 0; k < n; k++) {
            int pair = blocks.pairs()[k / 2];
            v[k] = (short) (k % 2 == 0 ? pair : pair >> 16) * blocks.scales()[k / 32];
        }
        return v;
    }
}
