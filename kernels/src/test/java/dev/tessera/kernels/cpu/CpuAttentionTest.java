package dev.tessera.kernels.cpu;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.PagedKvCache;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Attention through scattered block tables equals attention over private contiguous caches: two sequences
 * prefilled in one batch, then decoded together, with their blocks interleaved in one store.
 */
class CpuAttentionTest {
    static final int LAYERS = 2, HEADS = 4, KV_HEADS = 2, HEAD_DIM = 16, BLOCK = 4;

    @ParameterizedTest
    @EnumSource(KvCacheType.class)
    void pagedMatchesContiguous(KvCacheType type) {
        Random random = new Random(3);
        int kvDim = KV_HEADS * HEAD_DIM, qDim = HEADS * HEAD_DIM;
        try (CpuBackend backend = new CpuBackend(2);
             KvBlockStore store = backend.allocateKvBlocks(LAYERS, KV_HEADS, HEAD_DIM, BLOCK, 16, type)) {
            KvCache a = backend.allocateKvCache(LAYERS, KV_HEADS, HEAD_DIM, 64), b = backend.allocateKvCache(LAYERS, KV_HEADS, HEAD_DIM, 64);
            PagedKvCache pa = new PagedKvCache(store), pb = new PagedKvCache(store);
            pa.setBlocks(new int[]{7, 2, 11, 0}, 4);   // 16 positions
            pb.setBlocks(new int[]{5, 14, 3}, 3);      // 12 positions
            int[][] steps = {{0, 9, 0, 6}, {9, 1, 6, 1}, {10, 1, 7, 1}, {11, 1, 8, 1}};  // (startA, nA, startB, nB)
            for (int[] step : steps) {
                int n = step[1] + step[3];
                int[] pos = new int[n];
                KvCache[] contiguous = new KvCache[n], paged = new KvCache[n];
                for (int t = 0; t < n; t++) {
                    boolean first = t < step[1];
                    pos[t] = first ? step[0] + t : step[2] + t - step[1];
                    contiguous[t] = first ? a : b;
                    paged[t] = first ? pa : pb;
                }
                float[] q = gaussian(random, n * qDim), k = gaussian(random, n * kvDim), v = gaussian(random, n * kvDim);
                for (int layer = 0; layer < LAYERS; layer++) {
                    float[] want = attend(backend, layer, q, k, v, new AttentionBatch(n, pos, contiguous), n);
                    float[] got = attend(backend, layer, q, k, v, new AttentionBatch(n, pos, paged), n);
                    float tolerance = type == KvCacheType.F32 ? 0f : 2e-3f;
                    for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], tolerance, "layer " + layer + " element " + i);
                }
            }
        }
    }

    /**
     * Against attention written out in doubles: causal softmax over all earlier rows, each query head reading KV head
     * h / (heads / KV_HEADS), for a prompt of 21 tokens (the last block partial) and one decode step; with blocks of 16
     * and heads of 64 the kernel's vector paths run, with blocks of 4 and heads of 16 or 8 its fallbacks. A private
     * cache gives the same bits as the paged one.
     */
    @ParameterizedTest
    @CsvSource({"F32, 16, 64", "F16, 16, 64", "F32, 4, 16", "F16, 4, 16", "F32, 16, 8", "F32, 32, 128"})
    void matchesAScalarReference(KvCacheType type, int blockSize, int headDim) {
        Random random = new Random(11);
        int heads = 8, kvDim = KV_HEADS * headDim, qDim = heads * headDim, prompt = 21;
        try (CpuBackend backend = new CpuBackend(2);
             KvBlockStore store = backend.allocateKvBlocks(LAYERS, KV_HEADS, headDim, blockSize, 16, type)) {
            PagedKvCache cache = new PagedKvCache(store);
            cache.setBlocks(new int[]{9, 1, 14, 4, 0, 6}, 6);
            KvCache contiguous = backend.allocateKvCache(LAYERS, KV_HEADS, headDim, 64);
            float[] keys = new float[0], values = new float[0];
            for (int[] step : new int[][]{{0, prompt}, {prompt, 1}}) {
                int n = step[1];
                int[] pos = new int[n];
                KvCache[] seqs = new KvCache[n], privates = new KvCache[n];
                for (int t = 0; t < n; t++) { pos[t] = step[0] + t; seqs[t] = cache; privates[t] = contiguous; }
                float[] q = gaussian(random, n * qDim), k = gaussian(random, n * kvDim), v = gaussian(random, n * kvDim);
                keys = concat(keys, k);
                values = concat(values, v);
                float[] got = attend(backend, 1, q, k, v, new AttentionBatch(n, pos, seqs), n, heads, KV_HEADS, headDim);
                if (type == KvCacheType.F32) {
                    float[] viaPrivate = attend(backend, 1, q, k, v, new AttentionBatch(n, pos, privates), n, heads, KV_HEADS, headDim);
                    for (int i = 0; i < got.length; i++) assertEquals(viaPrivate[i], got[i], 0f, "private cache, element " + i);
                }
                for (int t = 0; t < n; t++)
                    for (int h = 0; h < heads; h++) {
                        int kvo = h / (heads / KV_HEADS) * headDim, len = pos[t] + 1;
                        double[] score = new double[len];
                        double max = Double.NEGATIVE_INFINITY, sum = 0;
                        for (int j = 0; j < len; j++) {
                            for (int i = 0; i < headDim; i++) score[j] += (double) q[t * qDim + h * headDim + i] * keys[j * kvDim + kvo + i];
                            score[j] /= Math.sqrt(headDim);
                            max = Math.max(max, score[j]);
                        }
                        for (int j = 0; j < len; j++) sum += score[j] = Math.exp(score[j] - max);
                        for (int i = 0; i < headDim; i++) {
                            double want = 0;
                            for (int j = 0; j < len; j++) want += score[j] / sum * values[j * kvDim + kvo + i];
                            float tolerance = type == KvCacheType.F32 ? 3e-5f : 1e-2f;
                            assertEquals(want, got[t * qDim + h * headDim + i], tolerance, "token " + t + " head " + h + " element " + i);
                        }
                    }
            }
        }
    }

    private static float[] concat(float[] a, float[] b) {
        float[] c = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    @Test
    void positionPastTheTableIsAnErrorNotACorruption() {
        try (CpuBackend backend = new CpuBackend(1);
             KvBlockStore store = backend.allocateKvBlocks(1, 1, 8, BLOCK, 4, KvCacheType.F32)) {
            PagedKvCache cache = new PagedKvCache(store);
            cache.setBlocks(new int[]{1}, 1);
            float[] x = new float[8];
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> attend(backend, 0, x, x, x, new AttentionBatch(1, new int[]{BLOCK}, new KvCache[]{cache}), 1, 1, 1, 8));
            assertEquals(true, e.getMessage().contains("beyond"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> cache.setBlocks(new int[]{4}, 1));
        }
    }

    static float[] attend(CpuBackend backend, int layer, float[] q, float[] k, float[] v, AttentionBatch batch, int n) {
        return attend(backend, layer, q, k, v, batch, n, HEADS, KV_HEADS, HEAD_DIM);
    }

    static float[] attend(CpuBackend backend, int layer, float[] q, float[] k, float[] v, AttentionBatch batch, int n,
                          int heads, int kvHeads, int headDim) {
        Activations qa = backend.allocate(n, heads * headDim), ka = backend.allocate(n, kvHeads * headDim),
                va = backend.allocate(n, kvHeads * headDim), out = backend.allocate(n, heads * headDim);
        backend.upload(q, qa, n);
        backend.upload(k, ka, n);
        backend.upload(v, va, n);
        backend.attention(layer, qa, ka, va, batch, heads, kvHeads, headDim, out);
        float[] result = new float[n * heads * headDim];
        backend.download(out, result, n);
        return result;
    }

    static float[] gaussian(Random random, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) random.nextGaussian();
        return x;
    }
}
