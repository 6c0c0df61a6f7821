package dev.tessera.kernels.cpu.rows;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The panel layout decodes to exactly the row layout's values (the unpacked ones may turn -0 into +0, which no sum
 * can tell apart), and its 16-row dot agrees with the scalar one. */
class Q4_0PanelsTest {

    @ParameterizedTest
    @CsvSource({"16, 32", "48, 256", "32, 2048"})
    void panelsHoldTheSameValuesAsRows(int rows, int cols) {
        Assumptions.assumeTrue(Q4_0Panels.supports(rows, cols), "needs 16-lane float vectors");
        Random random = new Random(rows * 131L + cols);
        Q4_0Rows plain = new Q4_0Rows();
        long rowBytes = (long) cols / 32 * 18, panelBytes = Q4_0Panels.panelBytes(cols);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(rowBytes * rows);
            for (long i = 0; i < data.byteSize(); i++) data.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
            for (long o = 0; o < data.byteSize(); o += 18)
                data.set(ValueLayout.JAVA_SHORT_UNALIGNED, o, Float.floatToFloat16((float) random.nextGaussian() * 0.05f));
            MemorySegment panels = Q4_0Panels.repack(data, rows, cols, arena);
            assertEquals(data.byteSize(), panels.byteSize());
            float[] x = new float[cols];
            for (int i = 0; i < cols; i++) x[i] = (float) random.nextGaussian();
            float[] expected = new float[cols], got = new float[cols], dots = new float[rows];
            float[] packed = new float[cols * rows];
            for (int p = 0; p < rows / 16; p++) {
                Q4_0Panels.dot(panels, p * panelBytes, cols, x, 0, dots, p * 16);
                Q4_0Panels.unpack(panels, p * panelBytes, 0, cols, packed, rows, p * 16);
            }
            for (int r = 0; r < rows; r++) {
                plain.dequantize(data, r * rowBytes, expected, 0, cols);
                Q4_0Panels.dequantizeRow(panels, (r / 16) * panelBytes, r % 16, cols, got, 0);
                assertArrayEquals(expected, got, "row " + r);
                for (int k = 0; k < cols; k++) assertEquals(expected[k], packed[k * rows + r], 0f, "unpacked row " + r + " column " + k);
                float ref = plain.dotScalar(data, r * rowBytes, x, 0, cols);
                assertEquals(ref, dots[r], 1e-4f * (1 + Math.abs(ref)) * Math.sqrt(cols), "dot row " + r);
                assertEquals(ref, Q4_0Panels.dotScalar(panels, (r / 16) * panelBytes, r % 16, cols, x, 0), 1e-4f * (1 + Math.abs(ref)) * Math.sqrt(cols));
            }
        }
    }
}
