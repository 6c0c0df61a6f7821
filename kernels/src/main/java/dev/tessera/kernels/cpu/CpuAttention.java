package dev.tessera.kernels.cpu;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.PagedKvCache;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Causal attention on the CPU over either kind of cache: a private {@link CpuKvCache} (row p at p) or a
 * {@link PagedKvCache} over a {@link CpuKvBlockStore} (row p at block[p / blockSize] * blockSize + p % blockSize),
 * F32 or F16. One job per (token, head), spread over the worker pool.
 */
final class CpuAttention {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    private final WorkerPool pool;
    private final float[][] scores;
    private final float[][] halfRows;

    CpuAttention(WorkerPool pool) {
        this.pool = pool;
        this.scores = new float[pool.numThreads()][];
        this.halfRows = new float[pool.numThreads()][];
    }

    void run(int layer, Activations q, Activations k, Activations v, AttentionBatch batch,
             int numHeads, int numKvHeads, int headDim, Activations out) {
        int numTokens = batch.numTokens();
        int kvDim = numKvHeads * headDim;
        float[] ks = data(k), vs = data(v), qs = data(q), os = data(out);
        for (int t = 0; t < numTokens; t++) store(batch.sequences()[t], layer, batch.positions()[t], kvDim, ks, t * k.width(), vs, t * v.width());
        int group = numHeads / numKvHeads;
        float scale = (float) (1.0 / Math.sqrt(headDim));
        long work = 0;
        for (int t = 0; t < numTokens; t++) work += (long) (batch.positions()[t] + 1) * headDim * numHeads * 2;
        pool.parallelFor(numTokens * numHeads, 1, work, (thread, start, end) -> {
            for (int job = start; job < end; job++) {
                int t = job / numHeads, h = job % numHeads;
                KvCache cache = batch.sequences()[t];
                int len = batch.positions()[t] + 1;
                float[] s = scores[thread];
                if (s == null || s.length < len) scores[thread] = s = new float[Math.max(len, 256)];
                float[] row = halfRows[thread];
                if (row == null || row.length < headDim) halfRows[thread] = row = new float[headDim];
                int qo = t * q.width() + h * headDim, kvo = (h / group) * headDim, oo = t * out.width() + h * headDim;
                java.util.Arrays.fill(os, oo, oo + headDim, 0f);
                if (cache instanceof CpuKvCache c) {
                    attendContiguous(c.keys[layer], c.values[layer], len, kvDim, kvo, qs, qo, os, oo, headDim, scale, s);
                } else {
                    PagedKvCache p = (PagedKvCache) cache;
                    attendPaged((CpuKvBlockStore) p.store(), p.blocks(), layer, len, kvo, qs, qo, os, oo, headDim, scale, s, row);
                }
            }
        });
    }

    private static void store(KvCache cache, int layer, int pos, int kvDim, float[] ks, int ko, float[] vs, int vo) {
        if (cache instanceof CpuKvCache c) {
            c.reserve(layer, pos + 1);
            System.arraycopy(ks, ko, c.keys[layer], pos * kvDim, kvDim);
            System.arraycopy(vs, vo, c.values[layer], pos * kvDim, kvDim);
            return;
        }
        if (!(cache instanceof PagedKvCache p) || !(p.store() instanceof CpuKvBlockStore st))
            throw new IllegalArgumentException("the CPU backend cannot attend over " + cache.getClass().getSimpleName());
        if (st.kvDim != kvDim || layer >= st.numLayers) throw new IllegalStateException("KV store of " + st.numLayers + " layers x " + st.kvDim + " used for layer " + layer + " x " + kvDim);
        int bs = st.blockSize;
        int at = (p.block(pos / bs) * bs + pos % bs) * kvDim;
        if (st.keys != null) {
            System.arraycopy(ks, ko, st.keys[layer], at, kvDim);
            System.arraycopy(vs, vo, st.values[layer], at, kvDim);
        } else {
            short[] hk = st.halfKeys[layer], hv = st.halfValues[layer];
            for (int i = 0; i < kvDim; i++) { hk[at + i] = Float.floatToFloat16(ks[ko + i]); hv[at + i] = Float.floatToFloat16(vs[vo + i]); }
        }
    }

    private static void attendContiguous(float[] keys, float[] values, int len, int kvDim, int kvo, float[] qs, int qo,
                                         float[] os, int oo, int headDim, float scale, float[] s) {
        for (int j = 0; j < len; j++) s[j] = FloatDot.dot(qs, qo, keys, j * kvDim + kvo, headDim) * scale;
        float inv = softmax(s, len);
        for (int j = 0; j < len; j++) axpy(s[j] * inv, values, j * kvDim + kvo, os, oo, headDim);
    }

    private static void attendPaged(CpuKvBlockStore st, int[] table, int layer, int len, int kvo, float[] qs, int qo,
                                    float[] os, int oo, int headDim, float scale, float[] s, float[] row) {
        int bs = st.blockSize, kvDim = st.kvDim;
        if (st.keys != null) {
            float[] keys = st.keys[layer], values = st.values[layer];
            for (int j = 0; j < len; j++) s[j] = FloatDot.dot(qs, qo, keys, slot(table, bs, j) * kvDim + kvo, headDim) * scale;
            float inv = softmax(s, len);
            for (int j = 0; j < len; j++) axpy(s[j] * inv, values, slot(table, bs, j) * kvDim + kvo, os, oo, headDim);
        } else {
            short[] keys = st.halfKeys[layer], values = st.halfValues[layer];
            for (int j = 0; j < len; j++) {
                widen(keys, slot(table, bs, j) * kvDim + kvo, row, headDim);
                s[j] = FloatDot.dot(qs, qo, row, 0, headDim) * scale;
            }
            float inv = softmax(s, len);
            for (int j = 0; j < len; j++) {
                widen(values, slot(table, bs, j) * kvDim + kvo, row, headDim);
                axpy(s[j] * inv, row, 0, os, oo, headDim);
            }
        }
    }

    /** Row of position j in the store: slot j % bs of block table[j / bs]. */
    private static int slot(int[] table, int bs, int j) {
        return table[j / bs] * bs + j % bs;
    }

    /** s[j] = exp(s[j] - max); returns 1 / sum. */
    private static float softmax(float[] s, int len) {
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < len; j++) if (s[j] > max) max = s[j];
        float sum = 0;
        for (int j = 0; j < len; j++) { float e = (float) Math.exp(s[j] - max); s[j] = e; sum += e; }
        return 1f / sum;
    }

    /** Half-float bits to F32; a plain loop the JIT turns into vector conversions. */
    private static void widen(short[] src, int from, float[] dst, int n) {
        for (int i = 0; i < n; i++) dst[i] = Float.float16ToFloat(src[from + i]);
    }

    /** y += a * x over n elements. */
    static void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n) {
        int i = 0;
        if (n >= F.length()) {
            FloatVector av = FloatVector.broadcast(F, alpha);
            for (; i < F.loopBound(n); i += F.length())
                FloatVector.fromArray(F, x, xo + i).fma(av, FloatVector.fromArray(F, y, yo + i)).intoArray(y, yo + i);
        }
        for (; i < n; i++) y[yo + i] += alpha * x[xo + i];
    }

    private static float[] data(Activations x) {
        return ((CpuActivations) x).data();
    }
}
