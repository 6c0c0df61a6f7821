package dev.tessera.kernels.cpu;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.ExpertRouting;
import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.RopeTable;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;
import dev.tessera.kernels.cpu.rows.VectorSum;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

/** The CPU backend: Vector API kernels over mapped weights, parallel over rows and heads on a {@link WorkerPool}. */
public final class CpuBackend implements Backend {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    private final WorkerPool pool;
    private final MatMul matMul;
    private final CpuAttention attention;
    private final CpuExperts experts;

    // The rotations of the last rope call's positions (see rotations).
    private RopeTable ropeTable;
    private int ropeTokens;
    private int[] ropePositions = new int[0];
    private float[] ropeCos = new float[0], ropeSin = new float[0];

    public CpuBackend(int numThreads) {
        this.pool = new WorkerPool(numThreads);
        this.matMul = new MatMul(pool);
        this.attention = new CpuAttention(pool);
        this.experts = new CpuExperts(matMul);
    }

    public int numThreads() {
        return pool.numThreads();
    }

    @Override
    public String name() {
        return "cpu (" + pool.numThreads() + " threads)";
    }

    @Override
    public Weight weight(String name, TensorType type, MemorySegment data, int rows, int cols) {
        if (!type.computable()) throw new IllegalArgumentException(name + ": tensor type " + type + " is not supported");
        return CpuWeight.of(name, type, data, rows, cols);
    }

    @Override
    public Activations allocate(int maxTokens, int width) {
        return new CpuActivations(maxTokens, width);
    }

    @Override
    public KvCache allocateKvCache(int numLayers, int numKvHeads, int headDim, int capacity) {
        return new CpuKvCache(numLayers, numKvHeads * headDim, capacity);
    }

    @Override
    public KvBlockStore allocateKvBlocks(int numLayers, int numKvHeads, int headDim, int blockSize, int numBlocks, KvCacheType type) {
        return new CpuKvBlockStore(numLayers, numKvHeads * headDim, headDim, blockSize, numBlocks, type);
    }

    @Override
    public void upload(float[] src, Activations dst, int numTokens) {
        System.arraycopy(src, 0, a(dst).data(), 0, numTokens * dst.width());
    }

    @Override
    public void download(Activations src, float[] dst, int numTokens) {
        System.arraycopy(a(src).data(), 0, dst, 0, numTokens * src.width());
    }

    /** As Backend.argmax, over the logits where they lie instead of a downloaded copy (128 KB a token for a 32K vocabulary). */
    @Override
    public void argmax(Activations logits, int numRows, int[] out) {
        Backend.argmaxRows(a(logits).data(), numRows, logits.width(), out);
    }

    @Override
    public void embed(Weight table, int[] tokens, int numTokens, Activations out) {
        CpuWeight w = (CpuWeight) table;
        float[] o = a(out).data();
        for (int t = 0; t < numTokens; t++) {
            if (tokens[t] < 0 || tokens[t] >= w.rows()) throw new IllegalArgumentException("token id " + tokens[t] + " outside vocabulary of " + w.rows());
            w.dequantize(tokens[t], o, t * out.width());
        }
    }

    @Override
    public void rmsNorm(Activations x, Weight gamma, float eps, int numTokens, Activations out) {
        normRows(a(x).data(), vector((CpuWeight) gamma), eps, numTokens, x.width(), a(out).data());
    }

    @Override
    public void rmsNormHeads(Activations x, Weight gamma, float eps, int numTokens, int numHeads) {
        float[] g = vector((CpuWeight) gamma);
        if (numHeads < 1 || x.width() % numHeads != 0 || g.length != x.width() / numHeads)
            throw new IllegalStateException(gamma.name() + " of " + g.length + " applied to " + numHeads + " heads of a row of " + x.width());
        // x[t] is numHeads rows of one head each: the rows of a [numTokens * numHeads][headDim] matrix.
        normRows(a(x).data(), g, eps, numTokens * numHeads, g.length, a(x).data());
    }

    /** os[row] = xs[row] / rms(xs[row]) * g for rows of width n (in place when xs is os). */
    private static void normRows(float[] xs, float[] g, float eps, int numRows, int n, float[] os) {
        for (int t = 0; t < numRows; t++) {
            int off = t * n;
            FloatVector acc = FloatVector.zero(F);
            int i = 0;
            for (; i < F.loopBound(n); i += F.length()) {
                FloatVector v = FloatVector.fromArray(F, xs, off + i);
                acc = v.fma(v, acc);
            }
            float ss = VectorSum.sum(acc);
            for (; i < n; i++) ss += xs[off + i] * xs[off + i];
            float scale = (float) (1.0 / Math.sqrt(ss / n + eps));
            for (i = 0; i < F.loopBound(n); i += F.length())
                FloatVector.fromArray(F, xs, off + i).mul(scale).mul(FloatVector.fromArray(F, g, i)).intoArray(os, off + i);
            for (; i < n; i++) os[off + i] = xs[off + i] * scale * g[i];
        }
    }

    @Override
    public void matmul(Weight w, Activations x, int numTokens, Activations out) {
        CpuWeight cw = checkShape(w, x, out);
        matMul.run(cw, a(x).data(), numTokens, a(out).data(), out.width());
    }

    private static CpuWeight checkShape(Weight w, Activations x, Activations out) {
        CpuWeight cw = (CpuWeight) w;
        if (cw.cols() != x.width() || cw.rows() != out.width())
            throw new IllegalStateException(w.name() + " [" + cw.rows() + "x" + cw.cols() + "] applied to width " + x.width() + " into " + out.width());
        return cw;
    }

    /**
     * Up to SMALL_BATCH tokens against panel matrices (a decode step's q/k/v, gate/up): one parallel region over all
     * their rows, the input's int8 blocks made once; each row has matmul's arithmetic, so the results are its bits. In a
     * 2-thread Q4_K_M decode the 512-row k and v matrices, alone, ran at 17-32 GMAC/s against 42-52 for the larger ones:
     * each call paid its own hand-off and started its weight streams anew. More tokens against matrices that all have an
     * integer GEMM (a prefill's) likewise take one region and one rounding of x ({@link MatMul#runIntegerGemms}).
     */
    @Override
    public void matmuls(Weight[] ws, Activations x, int numTokens, Activations[] outs) {
        CpuWeight[] cws = new CpuWeight[ws.length];
        boolean panels = numTokens <= MatMul.SMALL_BATCH;
        for (int i = 0; i < ws.length; i++) {
            cws[i] = checkShape(ws[i], x, outs[i]);
            panels &= cws[i].panels() != null;
        }
        int n = ws.length;
        boolean integerGemms = numTokens > MatMul.SMALL_BATCH && MatMul.allIntegerGemms(cws, n);
        if (!panels && !integerGemms) {
            Backend.super.matmuls(ws, x, numTokens, outs);
            return;
        }
        float[][] dst = new float[n][];
        int[] counts = new int[n], widths = new int[n], zeros = new int[n];
        for (int i = 0; i < n; i++) {
            dst[i] = a(outs[i]).data();
            counts[i] = numTokens;
            widths[i] = cws[i].rows();
        }
        if (integerGemms) matMul.runIntegerGemms(cws, n, a(x).data(), numTokens, dst, widths);
        else matMul.runPanelGroups(cws, n, a(x).data(), numTokens, zeros, counts, dst, zeros, widths);
    }

    @Override
    public void addBias(Activations x, Weight bias, int numTokens) {
        float[] b = vector((CpuWeight) bias);
        float[] xs = a(x).data();
        int n = x.width();
        for (int t = 0; t < numTokens; t++) for (int i = 0; i < n; i++) xs[t * n + i] += b[i];
    }

    @Override
    public void rope(Activations x, int numTokens, int numHeads, int headDim, int[] positions, RopeTable rope) {
        float[] xs = a(x).data();
        int width = x.width(), half = rope.ropeDim() / 2;
        rotations(numTokens, positions, rope);
        for (int t = 0; t < numTokens; t++) {
            for (int i = 0; i < half; i++) {
                float cos = ropeCos[t * half + i], sin = ropeSin[t * half + i];
                for (int h = 0; h < numHeads; h++) {
                    int base = t * width + h * headDim;
                    int i0 = rope.neox() ? base + i : base + 2 * i;
                    int i1 = rope.neox() ? base + i + half : base + 2 * i + 1;
                    float v0 = xs[i0], v1 = xs[i1];
                    xs[i0] = v0 * cos - v1 * sin;
                    xs[i1] = v0 * sin + v1 * cos;
                }
            }
        }
    }

    /**
     * cos and sin of every (token, frequency) angle of a step into ropeCos/ropeSin, kept while the positions and table
     * stay the same: q and k of all layers of a step share them (a 1B decode called Math.cos and Math.sin 2,048 times a
     * token for 32 distinct pairs).
     */
    private void rotations(int numTokens, int[] positions, RopeTable rope) {
        int half = rope.ropeDim() / 2;
        if (rope == ropeTable && numTokens == ropeTokens && java.util.Arrays.equals(positions, 0, numTokens, ropePositions, 0, numTokens)) return;
        if (ropeCos.length < numTokens * half) {
            ropeCos = new float[numTokens * half];
            ropeSin = new float[numTokens * half];
        }
        if (ropePositions.length < numTokens) ropePositions = new int[numTokens];
        float[] inv = rope.invFreq();
        for (int t = 0; t < numTokens; t++)
            for (int i = 0; i < half; i++) {
                double angle = positions[t] * (double) inv[i];
                ropeCos[t * half + i] = (float) Math.cos(angle);
                ropeSin[t * half + i] = (float) Math.sin(angle);
            }
        System.arraycopy(positions, 0, ropePositions, 0, numTokens);
        ropeTokens = numTokens;
        ropeTable = rope;
    }

    @Override
    public void swiglu(Activations gate, Activations up, int numTokens) {
        float[] g = a(gate).data(), u = a(up).data();
        int n = numTokens * gate.width();
        // Work counted as one per element: a decode step's 8192 (a 1B model) then run on the caller, which took 30 µs
        // against 49 handed off (the halves of gate and up each thread wrote cross cores either way).
        pool.parallelFor(n, F.length(), n, (thread, start, end) -> {
            // VectorExp for every element, the last few under a mask: the same bits in every JIT tier and batch.
            int i = start;
            for (; i + F.length() <= end; i += F.length()) {
                FloatVector gv = FloatVector.fromArray(F, g, i);
                FloatVector silu = gv.div(VectorExp.exp(gv.neg()).add(1f));
                silu.mul(FloatVector.fromArray(F, u, i)).intoArray(g, i);
            }
            if (i < end) {
                VectorMask<Float> in = F.indexInRange(i, end);
                FloatVector gv = FloatVector.fromArray(F, g, i, in);
                FloatVector silu = gv.div(VectorExp.exp(gv.neg()).add(1f));
                silu.mul(FloatVector.fromArray(F, u, i, in)).intoArray(g, i, in);
            }
        });
    }

    @Override
    public void add(Activations acc, Activations x, int numTokens) {
        float[] as = a(acc).data(), xs = a(x).data();
        int n = numTokens * acc.width();
        int i = 0;
        for (; i < F.loopBound(n); i += F.length())
            FloatVector.fromArray(F, as, i).add(FloatVector.fromArray(F, xs, i)).intoArray(as, i);
        for (; i < n; i++) as[i] += xs[i];
    }

    @Override
    public void attention(int layer, Activations q, Activations k, Activations v, AttentionBatch batch,
                          int numHeads, int numKvHeads, int headDim, Activations out) {
        attention.run(layer, q, k, v, batch, numHeads, numKvHeads, headDim, out);
    }

    @Override
    public boolean supportsExperts(TensorType type) {
        return type.computable();
    }

    @Override
    public void routeExperts(Activations routerLogits, int numTokens, ExpertRouting routing) {
        if (routerLogits.width() != routing.numExperts())
            throw new IllegalStateException("router logits of width " + routerLogits.width() + " for " + routing.numExperts() + " experts");
        routing.route(a(routerLogits).data(), numTokens);
    }

    @Override
    public void matmulExperts(Weight[] weights, Activations x, boolean xPerSlot, ExpertRouting routing, Activations out) {
        experts.matmul(weights, a(x).data(), x.width(), xPerSlot, routing, a(out).data(), out.width());
    }

    @Override
    public void matmulExpertsGateUp(Weight[] gate, Weight[] up, Activations x, ExpertRouting routing, Activations gateOut, Activations upOut) {
        if (gateOut.width() != upOut.width()) throw new IllegalStateException("gate rows of width " + gateOut.width() + ", up rows of " + upOut.width());
        experts.matmulGateUp(gate, up, a(x).data(), x.width(), routing, a(gateOut).data(), a(upOut).data(), gateOut.width());
    }

    @Override
    public void combineExperts(Activations slots, ExpertRouting routing, Activations acc) {
        if (slots.width() != acc.width()) throw new IllegalStateException("expert outputs of width " + slots.width() + " into " + acc.width());
        CpuExperts.combine(a(slots).data(), routing, a(acc).data(), acc.width());
    }

    @Override
    public void addSigmoidGated(Activations acc, Activations x, Activations gate, int numTokens) {
        CpuExperts.addSigmoidGated(a(acc).data(), a(x).data(), a(gate).data(), gate.width(), numTokens, acc.width());
    }

    private static float[] vector(CpuWeight w) {
        if (w.vector() == null) throw new IllegalStateException(w.name() + " is not a 1-D weight");
        return w.vector();
    }

    private static CpuActivations a(Activations x) {
        return (CpuActivations) x;
    }

    @Override
    public void close() {
        pool.close();
    }
}
