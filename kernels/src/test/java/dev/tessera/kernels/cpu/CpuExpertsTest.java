package dev.tessera.kernels.cpu;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.ExpertRouting;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The grouped expert matmul against its scalar reference, and against one dense matmul per slot; experts are slices
 * of one 3-D tensor laid out as GGUF stores {@code ffn_*_exps} (expert e at byte e * rows * rowBytes).
 */
class CpuExpertsTest {

    @ParameterizedTest
    @CsvSource({"Q8_0, 8, 2, 1, 2", "Q8_0, 8, 2, 7, 2", "Q8_0, 8, 2, 33, 2", "Q4_0, 8, 2, 5, 1", "Q4_0, 16, 4, 20, 2",
            "F32, 4, 1, 9, 2", "F16, 6, 3, 3, 1", "Q6_K, 4, 2, 6, 2"})
    void groupedMatmulMatchesScalarReference(TensorType type, int numExperts, int k, int numTokens, int threads) {
        int rows = 96, cols = 256;
        Random random = new Random(numExperts * 131L + k * 17L + numTokens);
        try (Arena arena = Arena.ofShared(); CpuBackend backend = new CpuBackend(threads)) {
            Weight[] experts = experts(backend, arena, type, numExperts, rows, cols, random);
            ExpertRouting routing = randomRouting(numTokens, numExperts, k, random);
            for (boolean perSlot : new boolean[] {false, true}) {
                int xRows = perSlot ? numTokens * k : numTokens;
                float[] x = gaussian(xRows * cols, random);
                float[] got = grouped(backend, experts, x, xRows, perSlot, routing, rows);
                float[] expected = new float[numTokens * k * rows];
                CpuExperts.matmulScalar(experts, x, cols, perSlot, routing, expected, rows);
                for (int i = 0; i < expected.length; i++) {
                    int slot = i / rows, t = slot / k;
                    CpuWeight w = (CpuWeight) experts[routing.expert(t, slot % k)];
                    // Panels that take int8 x may be off by its rounding.
                    double rounding = w.panelKernel() != null && w.panelKernel().needsInt8()
                            ? Int8Rounding.bound(w.kernel(), w.data(), (long) (i % rows) * w.rowBytes(), cols, x, (perSlot ? slot : t) * cols) : 0;
                    assertEquals(expected[i], got[i], 1e-3f * (1 + Math.abs(expected[i])) + rounding, type + " perSlot " + perSlot + " element " + i);
                }
            }
        }
    }

    /**
     * Panel experts: a slot's result is bit-identical to a dense matmul of that token alone, however tokens group (one
     * each, or a decode batch's few in one region; Q4_0 also a prefill's many, through its integer GEMM).
     */
    @ParameterizedTest
    @CsvSource({"Q8_0, 8, 2, 24", "Q4_0, 8, 2, 13", "Q8_0, 8, 2, 1", "Q4_0, 8, 4, 1", "Q4_K, 8, 2, 24", "Q6_K, 8, 2, 9",
            "Q5_K, 16, 4, 7", "Q4_0, 2, 2, 40"})
    void slotResultEqualsTheTokenAlone(TensorType type, int numExperts, int k, int numTokens) {
        int rows = 64, cols = 512;
        Random random = new Random(numTokens);
        try (Arena arena = Arena.ofShared(); CpuBackend backend = new CpuBackend(2)) {
            Weight[] experts = experts(backend, arena, type, numExperts, rows, cols, random);
            ExpertRouting routing = randomRouting(numTokens, numExperts, k, random);
            float[] x = gaussian(numTokens * cols, random);
            float[] got = grouped(backend, experts, x, numTokens, false, routing, rows);
            Activations in = backend.allocate(1, cols), out = backend.allocate(1, rows);
            float[] alone = new float[rows];
            for (int t = 0; t < numTokens; t++)
                for (int s = 0; s < k; s++) {
                    backend.upload(java.util.Arrays.copyOfRange(x, t * cols, (t + 1) * cols), in, 1);
                    backend.matmul(experts[routing.expert(t, s)], in, 1, out);
                    backend.download(out, alone, 1);
                    int slot = t * k + s;
                    assertArrayEquals(alone, java.util.Arrays.copyOfRange(got, slot * rows, (slot + 1) * rows), "token " + t + " slot " + s);
                }
        }
    }

    /**
     * Gate and up together (one parallel region when each expert has one token, a decode step) give exactly the two
     * separate grouped matmuls.
     */
    @ParameterizedTest
    @CsvSource({"Q8_0, 1", "Q4_0, 1", "Q8_0, 5", "Q6_K, 1"})
    void gateAndUpTogetherEqualTheTwoMatmuls(TensorType type, int numTokens) {
        int rows = 64, cols = 256, numExperts = 8, k = 2;
        Random random = new Random(type.ordinal() * 7L + numTokens);
        try (Arena arena = Arena.ofShared(); CpuBackend backend = new CpuBackend(2)) {
            Weight[] gate = experts(backend, arena, type, numExperts, rows, cols, random);
            Weight[] up = experts(backend, arena, type, numExperts, rows, cols, random);
            ExpertRouting routing = randomRouting(numTokens, numExperts, k, random);
            float[] x = gaussian(numTokens * cols, random);
            Activations in = backend.allocate(numTokens, cols), g = backend.allocate(numTokens * k, rows), u = backend.allocate(numTokens * k, rows);
            backend.upload(x, in, numTokens);
            backend.matmulExpertsGateUp(gate, up, in, routing, g, u);
            float[] gotGate = new float[numTokens * k * rows], gotUp = new float[numTokens * k * rows];
            backend.download(g, gotGate, numTokens * k);
            backend.download(u, gotUp, numTokens * k);
            assertArrayEquals(grouped(backend, gate, x, numTokens, false, routing, rows), gotGate, "gate");
            assertArrayEquals(grouped(backend, up, x, numTokens, false, routing, rows), gotUp, "up");
        }
    }

    @ParameterizedTest
    @CsvSource({"5, 8, 2", "3, 4, 4"})
    void combineAddsTheWeightedSlots(int numTokens, int numExperts, int k) {
        int width = 40;
        Random random = new Random(numTokens);
        try (CpuBackend backend = new CpuBackend(1)) {
            ExpertRouting routing = randomRouting(numTokens, numExperts, k, random);
            float[] slots = gaussian(numTokens * k * width, random), acc = gaussian(numTokens * width, random);
            Activations s = backend.allocate(numTokens * k, width), a = backend.allocate(numTokens, width);
            backend.upload(slots, s, numTokens * k);
            backend.upload(acc, a, numTokens);
            backend.combineExperts(s, routing, a);
            float[] got = new float[numTokens * width];
            backend.download(a, got, numTokens);
            for (int t = 0; t < numTokens; t++)
                for (int i = 0; i < width; i++) {
                    double expected = acc[t * width + i];
                    for (int j = 0; j < k; j++) expected += routing.weight(t, j) * slots[(t * k + j) * width + i];
                    assertEquals(expected, got[t * width + i], 1e-5, "token " + t + " element " + i);
                }
        }
    }

    /** numExperts expert matrices [rows][cols] as slices of one tensor, the layout of a GGUF {@code ffn_*_exps}. */
    static Weight[] experts(CpuBackend backend, Arena arena, TensorType type, int numExperts, int rows, int cols, Random random) {
        long expertBytes = type.byteSize(cols) * rows;
        MemorySegment data = arena.allocate(expertBytes * numExperts);
        for (long i = 0; i < data.byteSize(); i++) data.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
        saneValues(type, data);
        Weight[] experts = new Weight[numExperts];
        for (int e = 0; e < numExperts; e++)
            experts[e] = backend.weight("exps[" + e + "]", type, data.asSlice(e * expertBytes, expertBytes), rows, cols);
        return experts;
    }

    static ExpertRouting randomRouting(int numTokens, int numExperts, int k, Random random) {
        float[] logits = gaussian(numTokens * numExperts, random);
        ExpertRouting routing = new ExpertRouting(numTokens, numExperts, k, true, 0f);
        routing.route(logits, numTokens);
        return routing;
    }

    private static float[] grouped(CpuBackend backend, Weight[] experts, float[] x, int xRows, boolean perSlot, ExpertRouting routing, int rows) {
        int slots = routing.numTokens() * routing.numUsed();
        Activations in = backend.allocate(xRows, experts[0].cols()), out = backend.allocate(slots, rows);
        backend.upload(x, in, xRows);
        backend.matmulExperts(experts, in, perSlot, routing, out);
        float[] got = new float[slots * rows];
        backend.download(out, got, slots);
        return got;
    }

    static float[] gaussian(int n, Random random) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) random.nextGaussian();
        return x;
    }

    /** Random bytes make NaN or huge f16 scales; every block gets a small finite scale, plain floats small values. */
    private static void saneValues(TensorType type, MemorySegment data) {
        var f16 = ValueLayout.JAVA_SHORT_UNALIGNED;
        short scale = Float.floatToFloat16(0.01f);
        long numBlocks = data.byteSize() / type.blockBytes;
        for (long b = 0; b < numBlocks; b++) {
            long o = b * type.blockBytes;
            switch (type) {
                case Q4_0, Q8_0 -> data.set(f16, o, scale);
                case Q6_K -> data.set(f16, o + 208, scale);
                case Q4_K, Q5_K -> {  // d, then dmin
                    data.set(f16, o, scale);
                    data.set(f16, o + 2, scale);
                }
                case F16 -> data.set(f16, o, Float.floatToFloat16((float) (((o * 7919) % 200) - 100) / 100f));
                case F32 -> data.set(ValueLayout.JAVA_FLOAT_UNALIGNED, o, (float) (((o * 7919) % 200) - 100) / 100f);
                default -> throw new IllegalArgumentException(type.toString());
            }
        }
    }
}
