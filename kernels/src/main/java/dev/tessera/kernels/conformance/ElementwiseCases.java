package dev.tessera.kernels.conformance;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.RopeTable;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;

import java.lang.foreign.Arena;
import java.util.List;
import java.util.SplittableRandom;

import static dev.tessera.kernels.conformance.CaseData.*;

/**
 * The row-wise ops: embed for every computable format, rmsNorm (whole rows and per head, in place), addBias, rope (normal and NeoX, full and partial
 * rotary, positions up to 100,000), swiglu and add. Widths include stories260K's 172, which is not a multiple of a
 * warp or a vector.
 */
final class ElementwiseCases {
    private ElementwiseCases() {}

    static void add(List<ConformanceCase> cases, boolean quick) {
        long seed = 200;
        for (TensorType type : TensorType.values()) {
            if (!type.computable()) continue;
            long s = seed++;
            // Dequantizing is exact arithmetic on a few terms; only the order of a scale times a min may differ.
            cases.add(new ConformanceCase("embed " + type.ggmlName(), "embed", type, 1e-5, b -> embed(b, s, type)));
        }
        for (int width : new int[] {172, 512}) {
            long s = seed++;
            cases.add(new ConformanceCase("rmsNorm width " + width, "rmsNorm", null, 1e-4, b -> rmsNorm(b, s, width)));
            long s2 = seed++;
            cases.add(new ConformanceCase("addBias width " + width, "addBias", null, 1e-6, b -> addBias(b, s2, width)));
            long s3 = seed++;
            cases.add(new ConformanceCase("swiglu width " + width, "swiglu", null, 1e-5, b -> swiglu(b, s3, width)));
            long s4 = seed++;
            cases.add(new ConformanceCase("add width " + width, "add", null, 1e-6, b -> add(b, s4, width)));
        }
        // Qwen3's per-head q/k norms (8 heads of 64; 4 of 43, stories260K's head width) and OLMoE's whole-row one.
        for (int[] heads : new int[][] {{8, 64}, {4, 43}, {1, 512}}) {
            long s = seed++;
            cases.add(new ConformanceCase("rmsNormHeads " + heads[0] + "x" + heads[1], "rmsNormHeads", null, 1e-4,
                    b -> rmsNormHeads(b, s, heads[0], heads[1])));
        }
        for (boolean neox : new boolean[] {false, true}) {
            for (int ropeDim : new int[] {64, 48}) {
                if (quick && ropeDim == 48) continue;
                long s = seed++;
                String name = "rope " + (neox ? "neox" : "normal") + (ropeDim < 64 ? " partial " + ropeDim + " of 64" : "");
                // Angles up to 1e5 radians: float sin/cos of the same angle differ in the last bits across libraries.
                cases.add(new ConformanceCase(name, "rope", null, 1e-4, b -> rope(b, s, ropeDim, neox)));
            }
        }
    }

    private static float[] embed(Backend b, long seed, TensorType type) {
        SplittableRandom random = new SplittableRandom(seed);
        int vocab = 40, dim = 256;
        int[] tokens = {5, 0, vocab - 1, 17, 5};
        Weight table = b.weight("token_embd", type, tensor(Arena.ofAuto(), random, type, vocab, dim), vocab, dim);
        Activations out = b.allocate(tokens.length, dim);
        b.embed(table, tokens, tokens.length, out);
        return download(b, out, tokens.length);
    }

    static float[] rmsNorm(Backend b, long seed, int width) {
        SplittableRandom random = new SplittableRandom(seed);
        int n = 7;
        Weight gamma = f32(b, "gamma", vector(Arena.ofAuto(), gaussian(random, width, 1f)), width);
        Activations x = upload(b, gaussian(random, n * width, 3f), n, width), out = b.allocate(n, width);
        b.rmsNorm(x, gamma, 1e-5f, n, out);
        return download(b, out, n);
    }

    static float[] rmsNormHeads(Backend b, long seed, int numHeads, int headDim) {
        SplittableRandom random = new SplittableRandom(seed);
        int n = 5, width = numHeads * headDim;
        Weight gamma = f32(b, "q_norm", vector(Arena.ofAuto(), gaussian(random, headDim, 1f)), headDim);
        Activations x = upload(b, gaussian(random, n * width, 3f), n, width);
        b.rmsNormHeads(x, gamma, 1e-6f, n, numHeads);
        return download(b, x, n);
    }

    private static float[] addBias(Backend b, long seed, int width) {
        SplittableRandom random = new SplittableRandom(seed);
        int n = 7;
        Weight bias = f32(b, "bias", vector(Arena.ofAuto(), gaussian(random, width, 1f)), width);
        Activations x = upload(b, gaussian(random, n * width, 1f), n, width);
        b.addBias(x, bias, n);
        return download(b, x, n);
    }

    private static float[] swiglu(Backend b, long seed, int width) {
        SplittableRandom random = new SplittableRandom(seed);
        int n = 7;
        Activations gate = upload(b, gaussian(random, n * width, 2f), n, width), up = upload(b, gaussian(random, n * width, 1f), n, width);
        b.swiglu(gate, up, n);
        return download(b, gate, n);
    }

    private static float[] add(Backend b, long seed, int width) {
        SplittableRandom random = new SplittableRandom(seed);
        int n = 7;
        Activations acc = upload(b, gaussian(random, n * width, 1f), n, width), x = upload(b, gaussian(random, n * width, 1f), n, width);
        b.add(acc, x, n);
        return download(b, acc, n);
    }

    private static float[] rope(Backend b, long seed, int ropeDim, boolean neox) {
        SplittableRandom random = new SplittableRandom(seed);
        int numHeads = 8, headDim = 64, n = 6;
        int[] positions = {0, 7, 1000, 4095, 100000, random.nextInt(4000)};
        RopeTable table = RopeTable.of(ropeDim, neox ? 1000000 : 10000, null, 1, neox);
        Activations x = upload(b, gaussian(random, n * numHeads * headDim, 1f), n, numHeads * headDim);
        b.rope(x, n, numHeads, headDim, positions, table);
        return download(b, x, n);
    }
}
