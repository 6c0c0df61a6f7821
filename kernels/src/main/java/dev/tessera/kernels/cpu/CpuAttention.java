package dev.tessera.kernels.cpu;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.PagedKvCache;
import dev.tessera.kernels.cpu.rows.VectorSum;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Causal attention on the CPU over either kind of cache: a private {@link CpuKvCache} (row p at p) or a
 * {@link PagedKvCache} over a {@link CpuKvBlockStore}, F32 or F16. One job per (token, KV head), spread over the worker
 * pool: the query heads sharing a KV head (grouped-query attention) read each cached row once.
 * <p>
 * A paged block holds its keys transposed ({@link CpuKvBlockStore}): dimension d of the block's positions side by side.
 * A block's scores for one head are then a sum over d of q[d] times a vector of positions, with no sum across lanes: a
 * dot per position with its horizontal sum (and four divisions to find the row) took 125 µs per layer in a 2-thread
 * decode of a 1B model at 160 positions (AttentionTiming), against 25-34 µs this way. The store keeps each KV head's
 * blocks together, so a job streams one run of keys and one of values when a sequence's blocks are consecutive: in a
 * real decode, where the weights have pushed the cache out of L3, 68 against 48-56 µs per layer with each block's heads
 * together; at 1000 positions 343 against 218 µs.
 */
final class CpuAttention {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    private final WorkerPool pool;
    private final float[][] scores;
    private final float[][] wideRows;

    CpuAttention(WorkerPool pool) {
        this.pool = pool;
        this.scores = new float[pool.numThreads()][];
        this.wideRows = new float[pool.numThreads()][];
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
        pool.parallelFor(numTokens * numKvHeads, 1, work, (thread, start, end) -> {
            for (int job = start; job < end; job++) {
                int t = job / numKvHeads, kh = job % numKvHeads;
                KvCache cache = batch.sequences()[t];
                int len = batch.positions()[t] + 1;
                float[] s = scores[thread];
                if (s == null || s.length < group * len) scores[thread] = s = new float[Math.max(group * len, 256)];
                int qo = t * q.width() + kh * group * headDim, kvo = kh * headDim, oo = t * out.width() + kh * group * headDim;
                if (cache instanceof CpuKvCache c) {
                    for (int j = 0; j < len; j++)
                        for (int g = 0; g < group; g++) s[g * len + j] = rowScore(qs, qo + g * headDim, c.keys[layer], j * kvDim + kvo, headDim, scale);
                    for (int g = 0; g < group; g++) softmax(s, g * len, len);
                    weightedSum(c.values[layer], null, len, 0, kvo, kvDim, len, s, group, headDim, os, oo);
                    continue;
                }
                CpuKvBlockStore st = (CpuKvBlockStore) ((PagedKvCache) cache).store();
                int[] table = ((PagedKvCache) cache).blocks();
                int bs = st.blockSize;
                // F16 blocks are widened: one block's keys of this head at a time, then all the head's value rows.
                float[] wide = wideRows[thread];
                int wideFloats = st.keys == null ? Math.max(len, bs) * headDim : 0;
                if (wideFloats > 0 && (wide == null || wide.length < wideFloats)) wideRows[thread] = wide = new float[Math.max(wideFloats, 256 * headDim)];
                for (int j0 = 0, b = 0; j0 < len; j0 += bs, b++) {
                    int base = (kh * st.numBlocks + table[b]) * headDim * bs, n = Math.min(bs, len - j0);
                    if (st.keys != null) {
                        blockScores(st.keys[layer], base, bs, n, qs, qo, group, headDim, scale, s, len, j0);
                    } else {
                        widen(st.halfKeys[layer], base, wide, 0, headDim * bs);
                        blockScores(wide, 0, bs, n, qs, qo, group, headDim, scale, s, len, j0);
                    }
                }
                for (int g = 0; g < group; g++) softmax(s, g * len, len);
                if (st.values != null) {
                    weightedSum(st.values[layer], table, bs, headDim * bs, kh * st.numBlocks * headDim * bs, headDim, len, s, group, headDim, os, oo);
                } else {
                    for (int j0 = 0, b = 0; j0 < len; j0 += bs, b++)
                        widen(st.halfValues[layer], (kh * st.numBlocks + table[b]) * headDim * bs, wide, j0 * headDim, Math.min(bs, len - j0) * headDim);
                    weightedSum(wide, null, len, 0, 0, headDim, len, s, group, headDim, os, oo);
                }
            }
        });
    }

    /**
     * Scores of the group's query heads (at qo, headDim apart) against the first n positions of one block whose keys of
     * this KV head lie transposed at {@code base} (dimension d of slot i at base + d * bs + i), into s[g * len + j0 + i].
     * Lanes run over positions; where the block is not a whole number of vectors, one position at a time with a lane's
     * arithmetic.
     */
    private static void blockScores(float[] kt, int base, int bs, int n, float[] qs, int qo, int group, int headDim, float scale,
                                    float[] s, int len, int j0) {
        int w = F.length();
        int g = 0;
        if (bs % w == 0)
            for (; g + 4 <= group; g += 4) blockScores4(kt, base, bs, n, qs, qo + g * headDim, headDim, scale, s, g * len + j0, len);
        for (; g < group; g++) {
            int qg = qo + g * headDim, to = g * len + j0;
            if (bs % w != 0) {
                for (int i = 0; i < n; i++) {
                    float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                    int d = 0;
                    for (; d + 4 <= headDim; d += 4) {
                        a0 = Math.fma(kt[base + d * bs + i], qs[qg + d], a0);
                        a1 = Math.fma(kt[base + (d + 1) * bs + i], qs[qg + d + 1], a1);
                        a2 = Math.fma(kt[base + (d + 2) * bs + i], qs[qg + d + 2], a2);
                        a3 = Math.fma(kt[base + (d + 3) * bs + i], qs[qg + d + 3], a3);
                    }
                    for (; d < headDim; d++) a0 = Math.fma(kt[base + d * bs + i], qs[qg + d], a0);
                    s[to + i] = (a0 + a1 + (a2 + a3)) * scale;
                }
                continue;
            }
            for (int i = 0; i < n; i += w) {
                FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
                int at = base + i, d = 0;
                for (; d + 4 <= headDim; d += 4, at += 4 * bs) {
                    a0 = FloatVector.fromArray(F, kt, at).fma(FloatVector.broadcast(F, qs[qg + d]), a0);
                    a1 = FloatVector.fromArray(F, kt, at + bs).fma(FloatVector.broadcast(F, qs[qg + d + 1]), a1);
                    a2 = FloatVector.fromArray(F, kt, at + 2 * bs).fma(FloatVector.broadcast(F, qs[qg + d + 2]), a2);
                    a3 = FloatVector.fromArray(F, kt, at + 3 * bs).fma(FloatVector.broadcast(F, qs[qg + d + 3]), a3);
                }
                for (; d < headDim; d++, at += bs) a0 = FloatVector.fromArray(F, kt, at).fma(FloatVector.broadcast(F, qs[qg + d]), a0);
                a0.add(a1).add(a2.add(a3)).mul(scale).intoArray(s, to + i, F.indexInRange(i, n));
            }
        }
    }

    /**
     * {@link #blockScores}' vector path for four query heads at once (q at qg, headDim apart; scores at to, len apart):
     * each key vector is loaded once for the four, and the 16 running sums are 16 chains where one head had four. Each
     * head's sums are the same operations in the same order as alone, so the bits are blockScores'.
     */
    private static void blockScores4(float[] kt, int base, int bs, int n, float[] qs, int qg, int headDim, float scale, float[] s, int to, int len) {
        int w = F.length(), q1 = qg + headDim, q2 = q1 + headDim, q3 = q2 + headDim;
        for (int i = 0; i < n; i += w) {
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            FloatVector c0 = a0, c1 = a0, c2 = a0, c3 = a0, e0 = a0, e1 = a0, e2 = a0, e3 = a0;
            int at = base + i, d = 0;
            for (; d + 4 <= headDim; d += 4, at += 4 * bs) {
                FloatVector k0 = FloatVector.fromArray(F, kt, at), k1 = FloatVector.fromArray(F, kt, at + bs);
                FloatVector k2 = FloatVector.fromArray(F, kt, at + 2 * bs), k3 = FloatVector.fromArray(F, kt, at + 3 * bs);
                a0 = k0.fma(FloatVector.broadcast(F, qs[qg + d]), a0);
                a1 = k1.fma(FloatVector.broadcast(F, qs[qg + d + 1]), a1);
                a2 = k2.fma(FloatVector.broadcast(F, qs[qg + d + 2]), a2);
                a3 = k3.fma(FloatVector.broadcast(F, qs[qg + d + 3]), a3);
                b0 = k0.fma(FloatVector.broadcast(F, qs[q1 + d]), b0);
                b1 = k1.fma(FloatVector.broadcast(F, qs[q1 + d + 1]), b1);
                b2 = k2.fma(FloatVector.broadcast(F, qs[q1 + d + 2]), b2);
                b3 = k3.fma(FloatVector.broadcast(F, qs[q1 + d + 3]), b3);
                c0 = k0.fma(FloatVector.broadcast(F, qs[q2 + d]), c0);
                c1 = k1.fma(FloatVector.broadcast(F, qs[q2 + d + 1]), c1);
                c2 = k2.fma(FloatVector.broadcast(F, qs[q2 + d + 2]), c2);
                c3 = k3.fma(FloatVector.broadcast(F, qs[q2 + d + 3]), c3);
                e0 = k0.fma(FloatVector.broadcast(F, qs[q3 + d]), e0);
                e1 = k1.fma(FloatVector.broadcast(F, qs[q3 + d + 1]), e1);
                e2 = k2.fma(FloatVector.broadcast(F, qs[q3 + d + 2]), e2);
                e3 = k3.fma(FloatVector.broadcast(F, qs[q3 + d + 3]), e3);
            }
            for (; d < headDim; d++, at += bs) {
                FloatVector k0 = FloatVector.fromArray(F, kt, at);
                a0 = k0.fma(FloatVector.broadcast(F, qs[qg + d]), a0);
                b0 = k0.fma(FloatVector.broadcast(F, qs[q1 + d]), b0);
                c0 = k0.fma(FloatVector.broadcast(F, qs[q2 + d]), c0);
                e0 = k0.fma(FloatVector.broadcast(F, qs[q3 + d]), e0);
            }
            VectorMask<Float> in = F.indexInRange(i, n);
            a0.add(a1).add(a2.add(a3)).mul(scale).intoArray(s, to + i, in);
            b0.add(b1).add(b2.add(b3)).mul(scale).intoArray(s, to + len + i, in);
            c0.add(c1).add(c2.add(c3)).mul(scale).intoArray(s, to + 2 * len + i, in);
            e0.add(e1).add(e2.add(e3)).mul(scale).intoArray(s, to + 3 * len + i, in);
        }
    }

    /**
     * One key row's score, one position at a time with a lane's arithmetic in {@link #blockScores}, so a private cache
     * and a paged one give the same bits (a private cache serves checks and tools, not the engine).
     */
    private static float rowScore(float[] qs, int qo, float[] keys, int ko, int headDim, float scale) {
        float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        int d = 0;
        for (; d + 4 <= headDim; d += 4) {
            a0 = Math.fma(keys[ko + d], qs[qo + d], a0);
            a1 = Math.fma(keys[ko + d + 1], qs[qo + d + 1], a1);
            a2 = Math.fma(keys[ko + d + 2], qs[qo + d + 2], a2);
            a3 = Math.fma(keys[ko + d + 3], qs[qo + d + 3], a3);
        }
        for (; d < headDim; d++) a0 = Math.fma(keys[ko + d], qs[qo + d], a0);
        return (a0 + a1 + (a2 + a3)) * scale;
    }

    /**
     * os[oo + g * headDim ..] = Σ_j s[g * len + j] * row j, for each of the group's heads. Row j, slot i of block b
     * (positions j = b * bs + i), starts at table[b] * blockStride + offset + i * rowStride; with no table there is one
     * block of len rows from {@code offset}. Where headDim is a multiple of four vectors they accumulate in registers
     * down all rows; else one axpy per row, through memory.
     */
    private static void weightedSum(float[] rows, int[] table, int bs, int blockStride, int offset, int rowStride, int len,
                                    float[] s, int group, int headDim, float[] os, int oo) {
        int w = F.length();
        int g = 0;
        if (headDim % (4 * w) == 0)
            for (; g + 4 <= group; g += 4) weightedSum4(rows, table, bs, blockStride, offset, rowStride, len, s, g * len, headDim, os, oo + g * headDim);
        for (; g < group; g++) {
            int from = g * len, out = oo + g * headDim;
            if (headDim % (4 * w) != 0) {
                java.util.Arrays.fill(os, out, out + headDim, 0f);
                for (int j0 = 0, b = 0; j0 < len; j0 += bs, b++) {
                    int at = (table == null ? 0 : table[b] * blockStride) + offset;
                    for (int j = j0, end = Math.min(len, j0 + bs); j < end; j++, at += rowStride) axpy(s[from + j], rows, at, os, out, headDim);
                }
                continue;
            }
            for (int c = 0; c < headDim; c += 4 * w) {
                FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
                for (int j0 = 0, b = 0; j0 < len; j0 += bs, b++) {
                    int at = (table == null ? 0 : table[b] * blockStride) + offset + c;
                    for (int j = j0, end = Math.min(len, j0 + bs); j < end; j++, at += rowStride) {
                        FloatVector p = FloatVector.broadcast(F, s[from + j]);
                        a0 = FloatVector.fromArray(F, rows, at).fma(p, a0);
                        a1 = FloatVector.fromArray(F, rows, at + w).fma(p, a1);
                        a2 = FloatVector.fromArray(F, rows, at + 2 * w).fma(p, a2);
                        a3 = FloatVector.fromArray(F, rows, at + 3 * w).fma(p, a3);
                    }
                }
                a0.intoArray(os, out + c);
                a1.intoArray(os, out + c + w);
                a2.intoArray(os, out + c + 2 * w);
                a3.intoArray(os, out + c + 3 * w);
            }
        }
    }

    /**
     * {@link #weightedSum}'s register path for four heads at once (scores at from, len apart; outputs at out, headDim
     * apart): each value vector is loaded once for the four heads. Every output lane sums the same products in the same
     * row order as alone, so the bits are weightedSum's.
     */
    private static void weightedSum4(float[] rows, int[] table, int bs, int blockStride, int offset, int rowStride, int len,
                                     float[] s, int from, int headDim, float[] os, int out) {
        int w = F.length(), f1 = from + len, f2 = f1 + len, f3 = f2 + len;
        for (int c = 0; c < headDim; c += 4 * w) {
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            FloatVector c0 = a0, c1 = a0, c2 = a0, c3 = a0, e0 = a0, e1 = a0, e2 = a0, e3 = a0;
            for (int j0 = 0, b = 0; j0 < len; j0 += bs, b++) {
                int at = (table == null ? 0 : table[b] * blockStride) + offset + c;
                for (int j = j0, end = Math.min(len, j0 + bs); j < end; j++, at += rowStride) {
                    FloatVector v0 = FloatVector.fromArray(F, rows, at), v1 = FloatVector.fromArray(F, rows, at + w);
                    FloatVector v2 = FloatVector.fromArray(F, rows, at + 2 * w), v3 = FloatVector.fromArray(F, rows, at + 3 * w);
                    FloatVector p = FloatVector.broadcast(F, s[from + j]);
                    a0 = v0.fma(p, a0);
                    a1 = v1.fma(p, a1);
                    a2 = v2.fma(p, a2);
                    a3 = v3.fma(p, a3);
                    p = FloatVector.broadcast(F, s[f1 + j]);
                    b0 = v0.fma(p, b0);
                    b1 = v1.fma(p, b1);
                    b2 = v2.fma(p, b2);
                    b3 = v3.fma(p, b3);
                    p = FloatVector.broadcast(F, s[f2 + j]);
                    c0 = v0.fma(p, c0);
                    c1 = v1.fma(p, c1);
                    c2 = v2.fma(p, c2);
                    c3 = v3.fma(p, c3);
                    p = FloatVector.broadcast(F, s[f3 + j]);
                    e0 = v0.fma(p, e0);
                    e1 = v1.fma(p, e1);
                    e2 = v2.fma(p, e2);
                    e3 = v3.fma(p, e3);
                }
            }
            int o1 = out + headDim, o2 = o1 + headDim, o3 = o2 + headDim;
            a0.intoArray(os, out + c); a1.intoArray(os, out + c + w); a2.intoArray(os, out + c + 2 * w); a3.intoArray(os, out + c + 3 * w);
            b0.intoArray(os, o1 + c); b1.intoArray(os, o1 + c + w); b2.intoArray(os, o1 + c + 2 * w); b3.intoArray(os, o1 + c + 3 * w);
            c0.intoArray(os, o2 + c); c1.intoArray(os, o2 + c + w); c2.intoArray(os, o2 + c + 2 * w); c3.intoArray(os, o2 + c + 3 * w);
            e0.intoArray(os, o3 + c); e1.intoArray(os, o3 + c + w); e2.intoArray(os, o3 + c + 2 * w); e3.intoArray(os, o3 + c + 3 * w);
        }
    }

    /**
     * The new token's key and value into its sequence's cache: a private cache takes rows; a paged block takes them as
     * {@link CpuKvBlockStore} lays them out, the key transposed and the value per KV head.
     */
    private static void store(KvCache cache, int layer, int pos, int kvDim, float[] ks, int ko, float[] vs, int vo) {
        if (cache instanceof CpuKvCache c) {
            c.reserve(layer, pos + 1);
            System.arraycopy(ks, ko, c.keys[layer], pos * kvDim, kvDim);
            System.arraycopy(vs, vo, c.values[layer], pos * kvDim, kvDim);
            return;
        }
        if (!(cache instanceof PagedKvCache p) || !(p.store() instanceof CpuKvBlockStore st))
            throw new IllegalArgumentException("the CPU backend cannot attend over " + cache.getClass().getSimpleName());
        if (st.kvDim != kvDim || layer >= st.numLayers || kvDim % st.headDim != 0) throw new IllegalStateException("KV store of " + st.numLayers + " layers x " + st.kvDim + " used for layer " + layer + " x " + kvDim);
        int bs = st.blockSize, block = p.block(pos / bs), slot = pos % bs, headDim = st.headDim;
        // Head h's run in this block starts at (h * numBlocks + block) * headDim * bs.
        int headRun = st.numBlocks * headDim * bs, key = block * headDim * bs + slot, value = block * headDim * bs + slot * headDim;
        for (int h = 0, i = 0; h < kvDim / headDim; h++, key += headRun, value += headRun)
            for (int d = 0; d < headDim; d++, i++) {
                if (st.keys != null) {
                    st.keys[layer][key + d * bs] = ks[ko + i];
                    st.values[layer][value + d] = vs[vo + i];
                } else {
                    st.halfKeys[layer][key + d * bs] = Float.floatToFloat16(ks[ko + i]);
                    st.halfValues[layer][value + d] = Float.floatToFloat16(vs[vo + i]);
                }
            }
    }

    /**
     * s[from..from+len) becomes its softmax. Every element goes through {@link VectorExp} (the tail under a mask), so a
     * score's weight depends neither on where in the vector it falls nor on the JIT tier.
     */
    private static void softmax(float[] s, int from, int len) {
        FloatVector m = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        for (int i = 0; i < len; i += F.length()) {
            VectorMask<Float> in = F.indexInRange(i, len);
            m = m.max(FloatVector.fromArray(F, s, from + i, in).blend(Float.NEGATIVE_INFINITY, in.not()));
        }
        float max = m.reduceLanes(VectorOperators.MAX);
        FloatVector sum = FloatVector.zero(F);
        for (int i = 0; i < len; i += F.length()) {
            VectorMask<Float> in = F.indexInRange(i, len);
            FloatVector e = VectorExp.exp(FloatVector.fromArray(F, s, from + i, in).sub(max));
            e.intoArray(s, from + i, in);
            sum = sum.add(e, in);
        }
        float inv = 1f / VectorSum.sum(sum);
        for (int i = 0; i < len; i += F.length()) {
            VectorMask<Float> in = F.indexInRange(i, len);
            FloatVector.fromArray(F, s, from + i, in).mul(inv).intoArray(s, from + i, in);
        }
    }

    /** Half-float bits to F32; a plain loop the JIT turns into vector conversions. */
    private static void widen(short[] src, int from, float[] dst, int to, int n) {
        for (int i = 0; i < n; i++) dst[to + i] = Float.float16ToFloat(src[from + i]);
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
