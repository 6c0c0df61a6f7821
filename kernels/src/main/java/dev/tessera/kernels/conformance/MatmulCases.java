package dev.tessera.kernels.conformance;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;

import java.lang.foreign.Arena;
import java.util.List;
import java.util.SplittableRandom;

import static dev.tessera.kernels.conformance.CaseData.*;

/**
 * matmul for every computable weight format at token counts on both sides of the CUDA matvec/GEMM switch (16), and
 * the neighbour patterns the CUDA backend fuses into one matvec launch: Q, K and V over one normalized input, an
 * output projection added into the residual, gate and up followed by swiglu, at widths that take the split-row
 * matvec (rows of 4096 and 8192 columns).
 */
final class MatmulCases {
    private MatmulCases() {}

    /** Token counts of the plain matmul cases: one, a few, the most the matvec takes, and a GEMM's worth. */
    static final int[] TOKEN_COUNTS = {1, 3, 16, 33};
    /** Formats of the fused-pattern cases: one plain float and the two block formats models use most. */
    static final List<TensorType> FUSED_TYPES = List.of(TensorType.F16, TensorType.Q4_0, TensorType.Q8_0);

    static void add(List<ConformanceCase> cases, boolean quick) {
        int rows = 96, cols = 512;  // 512 columns: a whole number of 256-element K-quant blocks
        long seed = 100;
        for (TensorType type : TensorType.values()) {
            if (!type.computable()) continue;
            for (int numTokens : TOKEN_COUNTS) {
                if (quick && numTokens == 3) continue;
                long s = seed++;
                // F32 weights within 16 tokens are read as they are; everything else rounds (F16 GEMM inputs, quant
                // formats whose dot products a device may sum in another order or against quantized activations).
                double tolerance = type == TensorType.F32 && numTokens <= 16 ? 1e-4 : 2e-2;
                cases.add(new ConformanceCase("matmul " + type.ggmlName() + " [" + rows + "x" + cols + "] x" + numTokens, "matmul", type, tolerance,
                        b -> matmul(b, s, type, rows, cols, numTokens)));
            }
        }
        for (TensorType type : FUSED_TYPES) {
            for (int numTokens : new int[] {1, 2, 5}) {
                if (quick && numTokens == 2) continue;
                long s = seed++;
                cases.add(new ConformanceCase("fused layer " + type.ggmlName() + " x" + numTokens + " (QKV, +add, gate/up+swiglu, split rows)",
                        "matmul fused", type, 2e-2, b -> fusedLayer(b, s, type, numTokens)));
            }
        }
    }

    private static float[] matmul(Backend b, long seed, TensorType type, int rows, int cols, int numTokens) {
        SplittableRandom random = new SplittableRandom(seed);
        Arena arena = Arena.ofAuto();  // the CPU backend reads weights in place, so they live as long as the Weight
        Weight w = b.weight("w", type, tensor(arena, random, type, rows, cols), rows, cols);
        Activations x = upload(b, gaussian(random, numTokens * cols, 1f), numTokens, cols), out = b.allocate(numTokens, rows);
        b.matmul(w, x, numTokens, out);
        return download(b, out, numTokens);
    }

    /**
     * A transformer layer's matmul neighbours in the order models/arch calls them. Every intermediate is compared,
     * the residual both before and after the down projection.
     */
    private static float[] fusedLayer(Backend b, long seed, TensorType type, int n) {
        SplittableRandom random = new SplittableRandom(seed);
        Arena arena = Arena.ofAuto();
        int dim = 256, qRows = 4096, kvRows = 128, hidden = 8192;
        Weight wq = b.weight("wq", type, tensor(arena, random, type, qRows, dim), qRows, dim);
        Weight wk = b.weight("wk", type, tensor(arena, random, type, kvRows, dim), kvRows, dim);
        Weight wv = b.weight("wv", type, tensor(arena, random, type, kvRows, dim), kvRows, dim);
        Weight wo = b.weight("wo", type, tensor(arena, random, type, dim, qRows), dim, qRows);
        Weight wg = b.weight("wg", type, tensor(arena, random, type, hidden, dim), hidden, dim);
        Weight wu = b.weight("wu", type, tensor(arena, random, type, hidden, dim), hidden, dim);
        Weight wd = b.weight("wd", type, tensor(arena, random, type, dim, hidden), dim, hidden);
        Weight g1 = f32(b, "g1", vector(arena, gaussian(random, dim, 1f)), dim), g2 = f32(b, "g2", vector(arena, gaussian(random, dim, 1f)), dim);
        Activations in = upload(b, gaussian(random, n * dim, 1f), n, dim), acc = upload(b, gaussian(random, n * dim, 1f), n, dim);
        Activations xn = b.allocate(n, dim), an = b.allocate(n, dim), o = b.allocate(n, dim), d = b.allocate(n, dim);
        Activations q = b.allocate(n, qRows), k = b.allocate(n, kvRows), v = b.allocate(n, kvRows);
        Activations g = b.allocate(n, hidden), u = b.allocate(n, hidden);
        b.rmsNorm(in, g1, 1e-5f, n, xn);
        b.matmul(wq, xn, n, q);
        b.matmul(wk, xn, n, k);
        b.matmul(wv, xn, n, v);
        b.matmul(wo, q, n, o);
        b.add(acc, o, n);
        b.rmsNorm(acc, g2, 1e-5f, n, an);
        b.matmul(wg, an, n, g);
        b.matmul(wu, an, n, u);
        b.swiglu(g, u, n);
        float[] accMid = download(b, acc, n);
        b.matmul(wd, g, n, d);
        b.add(acc, d, n);
        return concat(download(b, xn, n), download(b, q, n), download(b, k, n), download(b, v, n), download(b, o, n),
                accMid, download(b, an, n), download(b, g, n), download(b, u, n), download(b, d, n), download(b, acc, n));
    }
}
