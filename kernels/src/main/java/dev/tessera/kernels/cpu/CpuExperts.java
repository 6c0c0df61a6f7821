package dev.tessera.kernels.cpu;

import dev.tessera.kernels.ExpertRouting;
import dev.tessera.kernels.Weight;

/**
 * The CPU's grouped expert matmul, after ggml-cpu's {@code mul_mat_id}: for each expert with tokens this step, its
 * input rows are gathered into one contiguous batch, multiplied by the expert's matrix with the ordinary matmul
 * (so every weight type and panel layout the dense path has is used as is, and each expert's rows are read once for
 * all its tokens), and the results are scattered back to the slots. A decode step (at most
 * {@link MatMul#SMALL_BATCH} tokens per expert, panel weights) runs all its experts in one parallel region; bigger
 * groups (a prefill) run one expert after another, the matmul inside spreading each one's rows over the threads.
 * <p>
 * A panel expert's result for a token does not depend on how many tokens share the expert (the panel kernels do the
 * same arithmetic for every batch size), so batching requests does not change greedy output.
 */
final class CpuExperts {
    private final MatMul matMul;
    private float[] gathered = new float[0];  // [tokens of one expert, or all slots grouped by expert][cols]
    private float[] results = new float[0];   // [tokens of one expert, or weight sets × slots grouped by expert][rows]

    CpuExperts(MatMul matMul) {
        this.matMul = matMul;
    }

    void matmul(Weight[] experts, float[] x, int xWidth, boolean xPerSlot, ExpertRouting routing, float[] out, int outWidth) {
        if (smallGroups(experts, xWidth, outWidth, routing)) {
            runInOneRegion(new Weight[][] {experts}, x, xWidth, xPerSlot, routing, new float[][] {out}, outWidth);
            return;
        }
        int k = routing.numUsed();
        for (int e = 0; e < routing.numExperts(); e++) {
            int count = routing.count(e);
            if (count == 0) continue;
            if (experts[e] == null) throw new IllegalStateException("expert " + e + " has " + count + " slots routed to it but no weights here");
            CpuWeight w = (CpuWeight) experts[e];
            if (w.cols() != xWidth || w.rows() != outWidth)
                throw new IllegalStateException(w.name() + " [" + w.rows() + "x" + w.cols() + "] applied to width " + xWidth + " into " + outWidth);
            int cols = w.cols(), rows = w.rows();
            if (gathered.length < count * cols) gathered = new float[count * cols];
            if (results.length < count * rows) results = new float[count * rows];
            for (int i = 0; i < count; i++) {
                int slot = routing.slot(e, i);
                int row = xPerSlot ? slot : slot / k;
                System.arraycopy(x, row * xWidth, gathered, i * cols, cols);
            }
            matMul.run(w, gathered, count, results, rows);
            for (int i = 0; i < count; i++) System.arraycopy(results, i * rows, out, routing.slot(e, i) * outWidth, rows);
        }
    }

    /**
     * Whether every expert with tokens has at most {@link MatMul#SMALL_BATCH} of them, in the panel layout, of the given
     * shape: a decode step (one sequence's, one token per expert, or a batch's), whose experts can share one parallel
     * region instead of a fork and join each.
     */
    private boolean smallGroups(Weight[] experts, int xWidth, int outWidth, ExpertRouting routing) {
        for (int e = 0; e < routing.numExperts(); e++) {
            int count = routing.count(e);
            if (count == 0) continue;
            if (count > MatMul.SMALL_BATCH || !(experts[e] instanceof CpuWeight w) || w.panels() == null || w.cols() != xWidth
                    || w.rows() != outWidth || w.rows() % dev.tessera.kernels.cpu.rows.PanelKernel.ROWS != 0) return false;
        }
        return true;
    }

    /**
     * gateOut and upOut of every slot, gate and up experts together in one parallel region in a decode step (one token
     * each, or a batch's few); else one grouped matmul after the other.
     */
    void matmulGateUp(Weight[] gate, Weight[] up, float[] x, int xWidth, ExpertRouting routing, float[] gateOut, float[] upOut, int outWidth) {
        if (smallGroups(gate, xWidth, outWidth, routing) && smallGroups(up, xWidth, outWidth, routing)) {
            runInOneRegion(new Weight[][] {gate, up}, x, xWidth, false, routing, new float[][] {gateOut, upOut}, outWidth);
            return;
        }
        matmul(gate, x, xWidth, false, routing, gateOut, outWidth);
        matmul(up, x, xWidth, false, routing, upOut, outWidth);
    }

    /**
     * Each weight set's experts with their tokens, all in one parallel region; set i writes outs[i]. With one token per
     * expert the experts read x's rows and write the slots' rows where they are; with more, every expert's input rows
     * are gathered once (shared by the sets) and its results scattered to the slots.
     */
    private void runInOneRegion(Weight[][] sets, float[] x, int xWidth, boolean xPerSlot, ExpertRouting routing, float[][] outs, int outWidth) {
        int k = routing.numUsed(), numExperts = routing.numExperts(), total = 0;
        boolean inPlace = true;
        int[] first = new int[numExperts];
        for (int e = 0; e < numExperts; e++) {
            first[e] = total;
            total += routing.count(e);
            inPlace &= routing.count(e) <= 1;
        }
        float[] in = x;
        int numXRows = xPerSlot ? routing.numTokens() * k : routing.numTokens();
        if (!inPlace) {
            if (gathered.length < total * xWidth) gathered = new float[total * xWidth];
            if (results.length < sets.length * total * outWidth) results = new float[sets.length * total * outWidth];
            for (int e = 0; e < numExperts; e++)
                for (int i = 0; i < routing.count(e); i++) {
                    int slot = routing.slot(e, i);
                    System.arraycopy(x, (xPerSlot ? slot : slot / k) * xWidth, gathered, (first[e] + i) * xWidth, xWidth);
                }
            in = gathered;
            numXRows = total;
        }
        int max = sets.length * numExperts, n = 0;
        CpuWeight[] ws = new CpuWeight[max];
        float[][] dst = new float[max][];
        int[] xRow0 = new int[max], counts = new int[max], outOffsets = new int[max], outWidths = new int[max];
        for (int set = 0; set < sets.length; set++)
            for (int e = 0; e < numExperts; e++) {
                if (routing.count(e) == 0) continue;
                ws[n] = (CpuWeight) sets[set][e];
                counts[n] = routing.count(e);
                outWidths[n] = outWidth;
                int slot = routing.slot(e, 0);
                xRow0[n] = inPlace ? (xPerSlot ? slot : slot / k) : first[e];
                dst[n] = inPlace ? outs[set] : results;
                outOffsets[n++] = (inPlace ? slot : set * total + first[e]) * outWidth;
            }
        matMul.runPanelGroups(ws, n, in, numXRows, xRow0, counts, dst, outOffsets, outWidths);
        if (inPlace) return;
        for (int set = 0; set < sets.length; set++)
            for (int e = 0; e < numExperts; e++)
                for (int i = 0; i < routing.count(e); i++)
                    System.arraycopy(results, (set * total + first[e] + i) * outWidth, outs[set], routing.slot(e, i) * outWidth, outWidth);
    }

    /**
     * The scalar reference of {@link #matmul}: every slot's every row dotted with the row kernel's plain scalar loop,
     * straight from the GGUF bytes, with no grouping.
     */
    static void matmulScalar(Weight[] experts, float[] x, int xWidth, boolean xPerSlot, ExpertRouting routing, float[] out, int outWidth) {
        int k = routing.numUsed();
        for (int t = 0; t < routing.numTokens(); t++)
            for (int s = 0; s < k; s++) {
                CpuWeight w = (CpuWeight) experts[routing.expert(t, s)];
                int slot = t * k + s;
                int row = xPerSlot ? slot : t;
                for (int r = 0; r < w.rows(); r++)
                    out[slot * outWidth + r] = w.kernel().dotScalar(w.data(), r * w.rowBytes(), x, row * xWidth, w.cols());
            }
    }

    /**
     * acc[t] += sum over s of weight(t, s) * slots[t * k + s]. As in llama.cpp's graph, the weighted experts are summed
     * in slot order first and the sum is then added to the residual.
     */
    static void combine(float[] slots, ExpertRouting routing, float[] acc, int width) {
        int k = routing.numUsed();
        for (int t = 0; t < routing.numTokens(); t++) {
            int base = t * k * width, dst = t * width;
            for (int i = 0; i < width; i++) {
                float sum = 0;
                for (int s = 0; s < k; s++) sum += routing.weight(t, s) * slots[base + s * width + i];
                acc[dst + i] += sum;
            }
        }
    }

    /** acc[t] += sigmoid(gate[t]) * x[t]. */
    static void addSigmoidGated(float[] acc, float[] x, float[] gate, int gateWidth, int numTokens, int width) {
        for (int t = 0; t < numTokens; t++) {
            float g = (float) (1 / (1 + Math.exp(-gate[t * gateWidth])));
            for (int i = 0; i < width; i++) acc[t * width + i] += g * x[t * width + i];
        }
    }
}
