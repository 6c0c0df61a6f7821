package dev.tessera.kernels.cpu;

import dev.tessera.kernels.ExpertRouting;
import dev.tessera.kernels.Weight;

/**
 * The CPU's grouped expert matmul, after ggml-cpu's {@code mul_mat_id}: for each expert with tokens this step, its
 * input rows are gathered into one contiguous batch, multiplied by the expert's matrix with the ordinary matmul
 * (so every weight type and panel layout the dense path has is used as is, and each expert's rows are read once for
 * all its tokens), and the results are scattered back to the slots. Experts run one after another; the matmul
 * inside spreads each one's rows over the threads.
 * <p>
 * A Q4_0 or Q8_0 expert's result for a token does not depend on how many tokens share the expert (the panel kernels
 * do the same arithmetic for every batch size), so batching requests does not change greedy output.
 */
final class CpuExperts {
    private final MatMul matMul;
    private float[] gathered = new float[0];  // [tokens of one expert][cols]
    private float[] results = new float[0];   // [tokens of one expert][rows]

    CpuExperts(MatMul matMul) {
        this.matMul = matMul;
    }

    void matmul(Weight[] experts, float[] x, int xWidth, boolean xPerSlot, ExpertRouting routing, float[] out, int outWidth) {
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
