package dev.tessera.kernels.cpu;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;
import dev.tessera.kernels.cpu.rows.PanelKernel;
import dev.tessera.kernels.cpu.rows.RowKernel;
import dev.tessera.kernels.cpu.rows.RowKernels;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The backend's matmul paths (decode dots, packed many-token kernel, row tails) against scalar row kernels. */
class CpuBackendMatmulTest {

    @ParameterizedTest
    @CsvSource({
            "Q4_0, 96, 256, 1, 2", "Q4_0, 96, 256, 9, 2", "Q4_0, 45, 512, 4, 1", "Q4_0, 64, 2048, 13, 2",
            "Q8_0, 96, 256, 1, 2", "Q8_0, 70, 320, 7, 2", "F32, 33, 48, 5, 2", "F32, 64, 64, 1, 1",
            "F16, 40, 128, 6, 2", "Q6_K, 32, 256, 3, 2", "Q4_K, 35, 512, 1, 2",
            "Q4_0, 80, 256, 6, 1", "Q8_0, 112, 128, 5, 1", "Q4_0, 2048, 64, 4, 2", "F32, 512, 96, 11, 2",
            "Q4_0, 96, 256, 20, 2", "Q8_0, 112, 128, 33, 1", "F32, 80, 64, 19, 1", "Q4_0, 2048, 64, 17, 2", "Q6_K, 64, 256, 24, 2",
            "Q4_0, 112, 256, 1, 2", "Q4_0, 112, 256, 2, 1", "Q4_0, 112, 256, 7, 2", "Q4_0, 208, 512, 33, 2", "Q4_0, 208, 512, 3, 2",
            "Q8_0, 112, 256, 1, 2", "Q8_0, 112, 256, 7, 2", "Q8_0, 208, 512, 33, 2", "Q8_0, 208, 512, 18, 1",
            "Q4_K, 96, 512, 1, 2", "Q4_K, 112, 256, 7, 2", "Q4_K, 208, 512, 33, 2", "Q4_K, 96, 256, 13, 1",
            "Q6_K, 112, 256, 1, 2", "Q6_K, 96, 512, 9, 1", "Q6_K, 208, 512, 33, 2", "Q6_K, 96, 256, 4, 2",
            "Q5_K, 96, 512, 1, 2", "Q5_K, 112, 256, 7, 2", "Q5_K, 208, 512, 33, 2", "Q5_K, 35, 256, 3, 1",
            "Q3_K, 96, 512, 1, 2", "Q3_K, 112, 256, 7, 2", "Q3_K, 208, 512, 33, 2", "Q3_K, 35, 256, 3, 1",
            "Q2_K, 96, 512, 1, 2", "Q2_K, 64, 256, 20, 2",
            "Q4_1, 96, 256, 1, 2", "Q4_1, 112, 256, 7, 2", "Q4_1, 208, 512, 33, 2", "Q4_1, 45, 512, 4, 1",
            "Q5_0, 96, 256, 1, 2", "Q5_0, 112, 256, 7, 2", "Q5_0, 64, 512, 20, 1", "Q5_0, 45, 512, 4, 1",
            "Q5_1, 96, 256, 1, 2", "Q5_1, 112, 256, 7, 2", "Q5_1, 208, 512, 33, 2", "Q5_1, 45, 512, 4, 1",
            "IQ4_NL, 96, 256, 1, 2", "IQ4_NL, 112, 256, 7, 2", "IQ4_NL, 64, 512, 20, 1",
            "IQ4_XS, 96, 256, 1, 2", "IQ4_XS, 112, 512, 7, 2", "IQ4_XS, 64, 512, 20, 1"})
    void matchesScalarReference(TensorType type, int rows, int cols, int numTokens, int threads) {
        Random random = new Random(rows * 31L + cols + numTokens);
        try (Arena arena = Arena.ofShared(); CpuBackend backend = new CpuBackend(threads)) {
            long rowBytes = type.byteSize(cols);
            MemorySegment data = randomWeight(arena, type, rows, cols, random);
            float[] x = gaussian(numTokens * cols, random);
            float[] got = matmul(backend, backend.weight("w", type, data, rows, cols), x, numTokens);
            RowKernel ref = RowKernels.forType(type);
            PanelKernel panels = PanelKernel.forType(type, rows, cols);
            boolean int8 = panels != null && panels.needsInt8();
            for (int t = 0; t < numTokens; t++)
                for (int r = 0; r < rows; r++) {
                    float expected = ref.dotScalar(data, r * rowBytes, x, t * cols, cols);
                    // An int8-activation kernel rounds each x by at most half its block's scale (max |x| / 127).
                    double rounding = int8 ? Int8Rounding.bound(ref, data, r * rowBytes, cols, x, t * cols) : 0;
                    assertEquals(expected, got[t * rows + r], 1e-3f * (1 + Math.abs(expected)) + rounding, type + " token " + t + " row " + r);
                }
        }
    }

    /** Every row's result is the same for 1, 2 and 3 threads and any batch size, bit for bit. */
    @ParameterizedTest
    @CsvSource({"Q4_0, 208, 512", "Q4_0, 96, 256", "Q8_0, 96, 256", "Q8_0, 208, 512", "Q4_0, 45, 512",
            "Q4_K, 96, 512", "Q4_K, 208, 256", "Q6_K, 112, 512", "Q6_K, 208, 256", "Q5_K, 208, 512", "Q3_K, 208, 512", "Q2_K, 208, 512", "Q4_1, 208, 512", "Q5_0, 208, 512", "Q5_1, 96, 256", "IQ4_NL, 208, 512", "IQ4_XS, 96, 512"})
    void resultsDoNotDependOnThreadsOrBatch(TensorType type, int rows, int cols) {
        Random random = new Random(rows + cols);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment data = randomWeight(arena, type, rows, cols, random);
            int maxTokens = 37;
            float[] x = gaussian(maxTokens * cols, random);
            float[] reference = null;
            for (int threads = 1; threads <= 3; threads++) {
                try (CpuBackend backend = new CpuBackend(threads)) {
                    float[] got = matmul(backend, backend.weight("w", type, data, rows, cols), x, maxTokens);
                    if (reference == null) reference = got;
                    else org.junit.jupiter.api.Assertions.assertArrayEquals(reference, got, threads + " threads");
                }
            }
        }
    }

    /** Q4_0 and Q8_0 panels: a token's result alone equals its result in a batch of up to SMALL_BATCH tokens, bit for bit. */
    @ParameterizedTest
    @CsvSource({"Q4_0, 2", "Q4_0, 3", "Q4_0, 5", "Q4_0, 8", "Q4_0, 16", "Q8_0, 3", "Q8_0, 16", "Q4_1, 3", "Q4_1, 16", "Q4_1, 37", "Q5_0, 5", "Q5_0, 37", "Q5_1, 8", "Q5_1, 20", "IQ4_NL, 5", "IQ4_NL, 37", "IQ4_XS, 8", "IQ4_XS, 20"})
    void panelResultsDoNotDependOnSmallBatches(TensorType type, int numTokens) {
        assertBatchedRowsEqualAlone(type, 208, 512, numTokens, new Random(numTokens));
    }

    /**
     * The integer GEMMs of Q4_0, Q4_K, Q5_K, Q6_K, Q3_K, Q8_0, IQ4_NL and IQ4_XS (more than SMALL_BATCH tokens) give each token the bits of its one-token dot, for row blocks
     * of three panels and the one- or two-panel remainder (208 = 4 * 48 + 16 rows, 224 = 4 * 48 + 32), over several K
     * chunks (cols 768) and token groups with a short last one. Q2_K, without an integer GEMM, takes its batched dots for
     * any number of tokens, with the same result.
     */
    @ParameterizedTest
    @CsvSource({"Q4_0, 208, 512, 17", "Q4_0, 224, 768, 37", "Q4_0, 96, 256, 20", "Q4_K, 208, 512, 17", "Q4_K, 224, 768, 37", "Q4_K, 96, 256, 20",
            "Q6_K, 208, 512, 17", "Q6_K, 224, 768, 37", "Q6_K, 96, 256, 20",
            "Q8_0, 208, 512, 17", "Q8_0, 224, 768, 37", "Q8_0, 96, 256, 20", "Q8_0, 32, 192, 20", "Q8_0, 256, 384, 37", "Q8_0, 64, 128, 17", "IQ4_NL, 208, 512, 17", "IQ4_NL, 224, 768, 37", "IQ4_XS, 208, 512, 17", "IQ4_XS, 224, 768, 37",
            "Q5_K, 208, 512, 3", "Q5_K, 208, 512, 17", "Q5_K, 224, 768, 37", "Q5_K, 96, 256, 20", "Q3_K, 208, 512, 3", "Q3_K, 96, 256, 20", "Q3_K, 208, 512, 17", "Q3_K, 224, 768, 37", "Q2_K, 96, 256, 20"})
    void integerPrefillRowsEqualTheirOneTokenDots(TensorType type, int rows, int cols, int numTokens) {
        assertBatchedRowsEqualAlone(type, rows, cols, numTokens, new Random(rows + numTokens));
    }

    /** Each token's row of a numTokens-token matmul is, bit for bit, the row of that token alone. */
    private static void assertBatchedRowsEqualAlone(TensorType type, int rows, int cols, int numTokens, Random random) {
        try (Arena arena = Arena.ofShared(); CpuBackend backend = new CpuBackend(2)) {
            Weight w = backend.weight("w", type, randomWeight(arena, type, rows, cols, random), rows, cols);
            float[] x = gaussian(numTokens * cols, random);
            float[] batched = matmul(backend, w, x, numTokens);
            for (int t = 0; t < numTokens; t++) {
                float[] alone = matmul(backend, w, java.util.Arrays.copyOfRange(x, t * cols, (t + 1) * cols), 1);
                org.junit.jupiter.api.Assertions.assertArrayEquals(alone, java.util.Arrays.copyOfRange(batched, t * rows, (t + 1) * rows), "token " + t);
            }
        }
    }

    /**
     * matmuls over weights sharing an input (q/k/v of mixed types, as in a Q4_K_M file; one without panels) gives each
     * output the bits of its own matmul, for one token (one parallel region) and for several.
     */
    @ParameterizedTest
    @CsvSource({"1", "3", "20"})
    void matmulsEqualSeparateMatmuls(int numTokens) {
        int cols = 512;
        TensorType[] types = {TensorType.Q4_K, TensorType.Q4_K, TensorType.Q6_K, TensorType.Q4_0, TensorType.Q8_0, TensorType.F16};
        int[] rows = {208, 48, 64, 96, 112, 40};
        Random random = new Random(numTokens);
        try (Arena arena = Arena.ofShared(); CpuBackend backend = new CpuBackend(2)) {
            Weight[] ws = new Weight[types.length];
            for (int i = 0; i < ws.length; i++) ws[i] = backend.weight("w" + i, types[i], randomWeight(arena, types[i], rows[i], cols, random), rows[i], cols);
            float[] x = gaussian(numTokens * cols, random);
            Activations in = backend.allocate(numTokens, cols);
            backend.upload(x, in, numTokens);
            for (Weight[] group : new Weight[][]{java.util.Arrays.copyOf(ws, 5), ws}) {
                Activations[] outs = new Activations[group.length];
                for (int i = 0; i < group.length; i++) outs[i] = backend.allocate(numTokens, group[i].rows());
                backend.matmuls(group, in, numTokens, outs);
                for (int i = 0; i < group.length; i++) {
                    float[] got = new float[numTokens * group[i].rows()];
                    backend.download(outs[i], got, numTokens);
                    org.junit.jupiter.api.Assertions.assertArrayEquals(matmul(backend, group[i], x, numTokens), got, group[i].name() + " of " + group.length);
                }
            }
        }
    }

    /** A rows x cols weight of random bytes, its scales made sane. */
    private static MemorySegment randomWeight(Arena arena, TensorType type, int rows, int cols, Random random) {
        MemorySegment data = arena.allocate(type.byteSize(cols) * rows);
        for (long i = 0; i < data.byteSize(); i++) data.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
        saneScales(type, data, rows * cols / type.blockSize);
        return data;
    }

    private static float[] gaussian(int n, Random random) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) random.nextGaussian();
        return x;
    }

    /** W · x for numTokens rows of x, through the backend's upload, matmul and download. */
    private static float[] matmul(CpuBackend backend, Weight w, float[] x, int numTokens) {
        Activations in = backend.allocate(numTokens, w.cols()), out = backend.allocate(numTokens, w.rows());
        backend.upload(x, in, numTokens);
        backend.matmul(w, in, numTokens, out);
        float[] got = new float[numTokens * w.rows()];
        backend.download(out, got, numTokens);
        return got;
    }

    /** Random bytes make NaN/huge f16 scales; give every block a small finite scale instead. */
    private static void saneScales(TensorType type, MemorySegment data, int numBlocks) {
        var f16 = ValueLayout.JAVA_SHORT_UNALIGNED;
        short scale = Float.floatToFloat16(0.01f);
        for (int b = 0; b < numBlocks; b++) {
            long o = (long) b * type.blockBytes;
            switch (type) {
                case Q4_0, Q8_0 -> data.set(f16, o, scale);
                case Q4_K, Q5_K, Q4_1, Q5_1 -> { data.set(f16, o, scale); data.set(f16, o + 2, scale); }
                case Q5_0, IQ4_NL, IQ4_XS -> data.set(f16, o, scale);
                case Q6_K -> data.set(f16, o + 208, scale);
                case Q3_K -> data.set(f16, o + 108, scale);
                case Q2_K -> { data.set(f16, o + 80, scale); data.set(f16, o + 82, scale); }
                case F16 -> { }
                case F32 -> { }
                default -> throw new IllegalArgumentException(type.toString());
            }
        }
        if (type == TensorType.F16)
            for (long i = 0; i < data.byteSize(); i += 2) data.set(f16, i, Float.floatToFloat16((float) (((i * 7919) % 200) - 100) / 100f));
        if (type == TensorType.F32)
            for (long i = 0; i < data.byteSize(); i += 4) data.set(ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) (((i * 7919) % 200) - 100) / 100f);
    }
}
