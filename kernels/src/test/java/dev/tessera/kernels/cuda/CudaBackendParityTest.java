package dev.tessera.kernels.cuda;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.RopeTable;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;
import dev.tessera.kernels.cpu.CpuBackend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every CUDA op against the CPU backend on random data. Skips, with the reason, where no CUDA device is usable. */
class CudaBackendParityTest {
    private static CudaBackend gpu;
    private static CpuBackend cpu;
    private static final Arena ARENA = Arena.ofShared();

    @BeforeAll
    static void start() {
        try {
            gpu = new CudaBackend(0);
        } catch (RuntimeException e) {  // LibraryUnavailableException, CudaException (no device, no kernels)
            Assumptions.abort("no CUDA device: " + e.getMessage());
        }
        cpu = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        if (gpu != null) gpu.close();
        if (cpu != null) cpu.close();
    }

    // ---- data ----

    /** Random GGUF bytes of a [rows][cols] tensor, with sane f16 block scales so every value is finite. */
    static MemorySegment randomTensor(TensorType type, int rows, int cols, Random r) {
        int bytes = Math.toIntExact(type.byteSize((long) rows * cols));
        ByteBuffer b = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
        switch (type) {
            case F32 -> { for (int i = 0; i < rows * cols; i++) b.putFloat((float) r.nextGaussian()); }
            case F16 -> { for (int i = 0; i < rows * cols; i++) b.putShort(Float.floatToFloat16((float) r.nextGaussian())); }
            case BF16 -> { for (int i = 0; i < rows * cols; i++) b.putShort((short) (Float.floatToRawIntBits((float) r.nextGaussian()) >>> 16)); }
            default -> {
                r.nextBytes(b.array());
                int numBlocks = bytes / type.blockBytes;
                for (int k = 0; k < numBlocks; k++) {
                    int o = k * type.blockBytes;
                    switch (type) {
                        case Q8_0, Q4_0 -> b.putShort(o, half(r, 0.01f, 0.1f));
                        case Q4_K -> { b.putShort(o, half(r, 0.001f, 0.01f)); b.putShort(o + 2, half(r, 0.001f, 0.01f)); }
                        case Q6_K -> b.putShort(o + 208, half(r, 0.0005f, 0.005f));
                        default -> throw new IllegalArgumentException(type.toString());
                    }
                }
            }
        }
        MemorySegment s = ARENA.allocate(bytes, 16);
        s.copyFrom(MemorySegment.ofArray(b.array()));
        return s;
    }

    private static short half(Random r, float lo, float hi) {
        return Float.floatToFloat16(lo + (hi - lo) * r.nextFloat());
    }

    static float[] gaussian(int n, Random r, float scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian() * scale;
        return x;
    }

    /** The same data as activations on both backends. */
    record Pair(Activations cpu, Activations gpu) {}

    static Pair activations(float[] values, int numTokens, int width) {
        Pair p = new Pair(cpu.allocate(numTokens, width), gpu.allocate(numTokens, width));
        cpu.upload(values, p.cpu, numTokens);
        gpu.upload(values, p.gpu, numTokens);
        return p;
    }

    static float[] read(Backend b, Activations a, int numTokens) {
        float[] out = new float[numTokens * a.width()];
        b.download(a, out, numTokens);
        return out;
    }

    /** Asserts max |gpu - cpu| <= tol * (1 + max |cpu|). */
    static void assertClose(Pair p, int numTokens, double tol, String what) {
        assertClose(read(cpu, p.cpu, numTokens), read(gpu, p.gpu, numTokens), tol, what);
    }

    static void assertClose(float[] expected, float[] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what);
        double maxAbs = 0, maxDiff = 0;
        int worst = 0;
        for (int i = 0; i < expected.length; i++) {
            maxAbs = Math.max(maxAbs, Math.abs(expected[i]));
            double d = Math.abs(expected[i] - actual[i]);
            if (!(d <= maxDiff)) { maxDiff = d; worst = i; }
        }
        double limit = tol * (1 + maxAbs);
        assertTrue(maxDiff <= limit, what + ": max difference " + maxDiff + " at " + worst + " (cpu " + expected[worst]
                + ", cuda " + actual[worst] + "), limit " + limit);
    }

    // ---- ops ----

    @Test
    void matmulMatchesCpuForEveryFormatAndTokenCount() {
        Random r = new Random(1);
        int rows = 72, cols = 512;
        for (TensorType type : CudaKernels.FORMATS) {
            MemorySegment data = randomTensor(type, rows, cols, r);
            Weight wc = cpu.weight("w", type, data, rows, cols), wg = gpu.weight("w", type, data, rows, cols);
            for (int n : new int[] {1, 2, 3, 8, 16, 33}) {
                Pair x = activations(gaussian(n * cols, r, 1f), n, cols);
                Pair out = new Pair(cpu.allocate(n, rows), gpu.allocate(n, rows));
                cpu.matmul(wc, x.cpu, n, out.cpu);
                gpu.matmul(wg, x.gpu, n, out.gpu);
                // More than 16 tokens go through F16 weights and activations into cuBLAS: F16 rounding.
                assertClose(out, n, n > 16 ? 2e-2 : 1e-4, type + " matmul of " + n + " tokens");
            }
        }
    }

    @Test
    void embedMatchesCpuForEveryFormat() {
        Random r = new Random(2);
        int vocab = 40, dim = 256;
        int[] tokens = {5, 0, 39, 5};
        for (TensorType type : CudaKernels.FORMATS) {
            MemorySegment data = randomTensor(type, vocab, dim, r);
            Weight wc = cpu.weight("emb", type, data, vocab, dim), wg = gpu.weight("emb", type, data, vocab, dim);
            Pair out = new Pair(cpu.allocate(4, dim), gpu.allocate(4, dim));
            cpu.embed(wc, tokens, 4, out.cpu);
            gpu.embed(wg, tokens, 4, out.gpu);
            assertClose(out, 4, 1e-6, type + " embed");
        }
    }

    @Test
    void elementwiseOpsMatchCpu() {
        Random r = new Random(3);
        int n = 3, width = 172;  // stories260K's hidden width: not a multiple of 32
        MemorySegment gamma = randomTensor(TensorType.F32, 1, width, r);
        Weight gc = cpu.weight("g", TensorType.F32, gamma, 1, width), gg = gpu.weight("g", TensorType.F32, gamma, 1, width);

        Pair x = activations(gaussian(n * width, r, 3f), n, width);
        Pair out = new Pair(cpu.allocate(n, width), gpu.allocate(n, width));
        cpu.rmsNorm(x.cpu, gc, 1e-5f, n, out.cpu);
        gpu.rmsNorm(x.gpu, gg, 1e-5f, n, out.gpu);
        assertClose(out, n, 1e-5, "rmsNorm");

        cpu.addBias(x.cpu, gc, n);
        gpu.addBias(x.gpu, gg, n);
        assertClose(x, n, 1e-6, "addBias");

        Pair up = activations(gaussian(n * width, r, 1f), n, width);
        cpu.swiglu(x.cpu, up.cpu, n);
        gpu.swiglu(x.gpu, up.gpu, n);
        assertClose(x, n, 1e-5, "swiglu");

        cpu.add(x.cpu, up.cpu, n);
        gpu.add(x.gpu, up.gpu, n);
        assertClose(x, n, 1e-6, "add");
    }

    @Test
    void ropeMatchesCpuNormalAndNeox() {
        Random r = new Random(4);
        int numHeads = 4, headDim = 64;
        int[] positions = {0, 7, 1000, 100000};
        for (boolean neox : new boolean[] {false, true}) {
            RopeTable table = RopeTable.of(48, 500000, null, 1.0, neox);  // partial rotary: 48 of 64 dims
            Pair x = activations(gaussian(4 * numHeads * headDim, r, 1f), 4, numHeads * headDim);
            cpu.rope(x.cpu, 4, numHeads, headDim, positions, table);
            gpu.rope(x.gpu, 4, numHeads, headDim, positions, table);
            assertClose(x, 4, 1e-5, (neox ? "neox" : "normal") + " rope");
        }
    }

    @Test
    void attentionMatchesCpuForPrefillDecodeAndMixedBatches() {
        attentionCase(8, 2, 64, new Random(5));
        attentionCase(8, 4, 8, new Random(6));    // stories260K's heads: headDim below a warp
        attentionCase(4, 4, 128, new Random(7));  // no GQA
    }

    private void attentionCase(int numHeads, int numKvHeads, int headDim, Random r) {
        int numLayers = 2, capacity = 100, qDim = numHeads * headDim, kvDim = numKvHeads * headDim;
        KvCache ca = cpu.allocateKvCache(numLayers, numKvHeads, headDim, capacity), cb = cpu.allocateKvCache(numLayers, numKvHeads, headDim, capacity);
        KvCache ga = gpu.allocateKvCache(numLayers, numKvHeads, headDim, capacity), gb = gpu.allocateKvCache(numLayers, numKvHeads, headDim, capacity);
        String shape = numHeads + "/" + numKvHeads + "x" + headDim;
        // Prefill 37 tokens of A (one sequence: the tiled kernel), then decode A at 37, then A at 38 with B at 0..2.
        int[][] positions = {range(0, 37), {37}, {38, 0, 1, 2}};
        boolean[][] inB = {new boolean[37], {false}, {false, true, true, true}};
        for (int step = 0; step < positions.length; step++) {
            int n = positions[step].length;
            KvCache[] cs = new KvCache[n], gs = new KvCache[n];
            for (int t = 0; t < n; t++) { cs[t] = inB[step][t] ? cb : ca; gs[t] = inB[step][t] ? gb : ga; }
            for (int layer = 0; layer < numLayers; layer++) {
                Pair q = activations(gaussian(n * qDim, r, 1f), n, qDim);
                Pair k = activations(gaussian(n * kvDim, r, 1f), n, kvDim);
                Pair v = activations(gaussian(n * kvDim, r, 1f), n, kvDim);
                Pair out = new Pair(cpu.allocate(n, qDim), gpu.allocate(n, qDim));
                cpu.attention(layer, q.cpu, k.cpu, v.cpu, new AttentionBatch(n, positions[step], cs), numHeads, numKvHeads, headDim, out.cpu);
                gpu.attention(layer, q.gpu, k.gpu, v.gpu, new AttentionBatch(n, positions[step], gs), numHeads, numKvHeads, headDim, out.gpu);
                assertClose(out, n, 1e-4, "attention " + shape + " step " + step + " layer " + layer);
            }
        }
        ga.close();
        gb.close();
    }

    private static int[] range(int from, int to) {
        int[] p = new int[to - from];
        for (int i = 0; i < p.length; i++) p[i] = from + i;
        return p;
    }

    @Test
    void argmaxAndSamplingPickWhatTheReferencePicks() {
        Random r = new Random(8);
        int rows = 3, vocab = 5000;
        float[] logits = gaussian(rows * vocab, r, 2f);
        logits[vocab + 17] = 50f;
        logits[vocab + 4000] = 50f;  // a tie: the lower index wins
        Activations g = gpu.allocate(rows, vocab);
        gpu.upload(logits, g, rows);
        int[] picked = new int[rows];
        gpu.argmax(g, rows, picked);
        for (int row = 0; row < rows; row++) assertEquals(argmax(logits, row * vocab, vocab), picked[row], "argmax row " + row);
        assertEquals(17, picked[1]);

        for (float u : new float[] {0f, 0.3f, 0.77f, 0.999f}) {
            float[] uniforms = {u, u, u};
            gpu.sampleTopKTopP(g, rows, 40, 0.9f, 0.8f, uniforms, picked);
            for (int row = 0; row < rows; row++)
                assertEquals(sampleReference(logits, row * vocab, vocab, 40, 0.9f, 0.8f, u), picked[row], "sample row " + row + " u " + u);
        }
    }

    static int argmax(float[] x, int off, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) if (x[off + i] > x[off + best]) best = i;
        return best;
    }

    /** The documented rule of sample_top_k_top_p, in double precision. */
    static int sampleReference(float[] x, int off, int n, int k, float topP, float temperature, float u) {
        Integer[] idx = new Integer[n];
        for (int i = 0; i < n; i++) idx[i] = i;
        java.util.Arrays.sort(idx, (a, b) -> x[off + a] != x[off + b] ? Float.compare(x[off + b], x[off + a]) : Integer.compare(a, b));
        double[] p = new double[k];
        double mass = 0;
        for (int j = 0; j < k; j++) { p[j] = Math.exp((x[off + idx[j]] - x[off + idx[0]]) / temperature); mass += p[j]; }
        double kept = 0;
        int numKept = 0;
        while (numKept < k) { kept += p[numKept++]; if (kept >= topP * mass) break; }
        double cum = 0;
        for (int j = 0; j < numKept; j++) { cum += p[j]; if (cum > u * kept) return idx[j]; }
        return idx[numKept - 1];
    }

    @Test
    void replayedDecodeStepsMatchCpu() {
        Random r = new Random(9);
        int vocab = 64, dim = 128, numHeads = 4, numKvHeads = 2, headDim = 32, kvDim = numKvHeads * headDim;
        MemorySegment emb = randomTensor(TensorType.Q8_0, vocab, dim, r);
        MemorySegment wkData = randomTensor(TensorType.Q6_K, kvDim, dim * 2, r);
        Weight ec = cpu.weight("emb", TensorType.Q8_0, emb, vocab, dim), eg = gpu.weight("emb", TensorType.Q8_0, emb, vocab, dim);
        MemorySegment wqData = randomTensor(TensorType.F16, dim, dim, r);
        Weight qc = cpu.weight("wq", TensorType.F16, wqData, dim, dim), qg = gpu.weight("wq", TensorType.F16, wqData, dim, dim);
        Weight kc = cpu.weight("wk", TensorType.Q6_K, wkData, kvDim, dim * 2), kg = gpu.weight("wk", TensorType.Q6_K, wkData, kvDim, dim * 2);
        RopeTable rope = RopeTable.of(headDim, 10000, null, 1, false);
        KvCache cc = cpu.allocateKvCache(1, numKvHeads, headDim, 64), gc = gpu.allocateKvCache(1, numKvHeads, headDim, 64);
        Pair x = new Pair(cpu.allocate(1, dim), gpu.allocate(1, dim));
        Pair q = new Pair(cpu.allocate(1, dim), gpu.allocate(1, dim));
        Pair x2 = activations(gaussian(dim * 2, r, 1f), 1, dim * 2);
        Pair kv = new Pair(cpu.allocate(1, kvDim), gpu.allocate(1, kvDim));
        Pair out = new Pair(cpu.allocate(1, dim), gpu.allocate(1, dim));
        Object key = "decode-step";
        for (int pos = 0; pos < 6; pos++) {
            int[] token = {r.nextInt(vocab)};
            for (Backend b : new Backend[] {cpu, gpu}) {
                boolean g = b == gpu;
                b.beginStep(key, 1);
                b.embed(g ? eg : ec, token, 1, g ? x.gpu : x.cpu);
                b.matmul(g ? qg : qc, g ? x.gpu : x.cpu, 1, g ? q.gpu : q.cpu);
                b.rope(g ? q.gpu : q.cpu, 1, numHeads, headDim, new int[] {pos}, rope);
                // K = V = rope(Wk . x2) at this position: the cache differs at every step.
                b.add(g ? q.gpu : q.cpu, g ? x.gpu : x.cpu, 1);
                b.matmul(g ? kg : kc, g ? x2.gpu : x2.cpu, 1, g ? kv.gpu : kv.cpu);
                b.rope(g ? kv.gpu : kv.cpu, 1, numKvHeads, headDim, new int[] {pos}, rope);
                b.attention(0, g ? q.gpu : q.cpu, g ? kv.gpu : kv.cpu, g ? kv.gpu : kv.cpu,
                        AttentionBatch.single(g ? gc : cc, pos, 1), numHeads, numKvHeads, headDim, g ? out.gpu : out.cpu);
                b.endStep();
            }
            assertClose(out, 1, 1e-4, "replayed step at position " + pos);
        }
        assertEquals(1, gpu.numGraphs());
    }
}
