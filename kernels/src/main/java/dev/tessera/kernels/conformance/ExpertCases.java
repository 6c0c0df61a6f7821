package dev.tessera.kernels.conformance;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.ExpertRouting;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;

import java.lang.foreign.Arena;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static dev.tessera.kernels.conformance.CaseData.*;

/**
 * The mixture-of-experts ops: routing from router logits, the grouped expert matmul (gate and up over the tokens' rows,
 * down over each slot's own row) as MoeFeedForward calls it, the weighted combine and Qwen2-MoE's sigmoid-gated add.
 * The fixed routing gives one expert more than 16 slots at 24 tokens (the CUDA GEMM path beside the matvec), leaves
 * one expert with weights but no tokens, and one with neither (an expert this device does not hold).
 */
final class ExpertCases {
    private ExpertCases() {}

    /** The ops whose cases need {@link Backend#supportsExperts} for their weight type. */
    static final Set<String> OPS = Set.of("matmulExperts", "matmulExperts layer");
    static final List<TensorType> TYPES = List.of(TensorType.Q8_0, TensorType.Q4_K);
    static final int NUM_EXPERTS = 6, NUM_USED = 2, DIM = 256, HIDDEN = 512;
    /** Expert 4 has weights and no tokens; expert 5 has neither. */
    static final int IDLE_EXPERT = 4, ABSENT_EXPERT = 5;

    static void add(List<ConformanceCase> cases, boolean quick) {
        long seed = 500;
        for (int numTokens : new int[] {1, 5, 40}) {
            long s = seed++;
            // Ids must be equal; the weights are a softmax of the same logits.
            cases.add(new ConformanceCase("routeExperts x" + numTokens + " (top " + NUM_USED + " of " + NUM_EXPERTS + ", normalized)",
                    "routeExperts", null, 1e-5, b -> route(b, s, numTokens)));
        }
        for (TensorType type : TYPES) {
            long s = seed++;
            cases.add(new ConformanceCase("matmulExperts " + type.ggmlName() + " x3 (gate alone)", "matmulExperts", type, 2e-2,
                    b -> matmulGate(b, s, type, 3)));
            for (int numTokens : new int[] {1, 5, 24}) {
                if (quick && numTokens == 5) continue;
                long s2 = seed++;
                cases.add(new ConformanceCase("matmulExperts layer " + type.ggmlName() + " x" + numTokens + " (gate/up, swiglu, down per slot, combine)",
                        "matmulExperts layer", type, 2e-2, b -> layer(b, s2, type, numTokens)));
            }
        }
        for (int width : new int[] {172, 512}) {
            long s = seed++;
            cases.add(new ConformanceCase("combineExperts width " + width, "combineExperts", null, 1e-5, b -> combine(b, s, width)));
            long s2 = seed++;
            cases.add(new ConformanceCase("addSigmoidGated width " + width, "addSigmoidGated", null, 1e-5, b -> addSigmoidGated(b, s2, width)));
        }
    }

    /** Token t goes to experts {0, 1}, {0, 2} or {3, 0} by t % 3, with random weights: expert 0 gets every token. */
    static ExpertRouting fixedRouting(SplittableRandom random, int numTokens) {
        int[] ids = new int[numTokens * NUM_USED];
        float[] weights = new float[numTokens * NUM_USED];
        for (int t = 0; t < numTokens; t++) {
            ids[2 * t] = t % 3 == 2 ? 3 : 0;
            ids[2 * t + 1] = t % 3 == 0 ? 1 : t % 3 == 1 ? 2 : 0;
            float w = 0.5f + 0.5f * (float) random.nextDouble();
            weights[2 * t] = w;
            weights[2 * t + 1] = 1 - w;
        }
        ExpertRouting routing = new ExpertRouting(numTokens, NUM_EXPERTS, NUM_USED, true, 0f);
        routing.set(numTokens, ids, weights);
        return routing;
    }

    /** [NUM_EXPERTS] experts of [rows][cols]; the absent one is null. */
    private static Weight[] experts(Backend b, Arena arena, SplittableRandom random, String name, TensorType type, int rows, int cols) {
        Weight[] w = new Weight[NUM_EXPERTS];
        for (int e = 0; e < NUM_EXPERTS; e++)
            if (e != ABSENT_EXPERT) w[e] = b.weight(name + "[" + e + "]", type, tensor(arena, random, type, rows, cols), rows, cols);
        return w;
    }

    private static float[] route(Backend b, long seed, int numTokens) {
        SplittableRandom random = new SplittableRandom(seed);
        Activations logits = upload(b, gaussian(random, numTokens * NUM_EXPERTS, 2f), numTokens, NUM_EXPERTS);
        ExpertRouting routing = new ExpertRouting(numTokens, NUM_EXPERTS, NUM_USED, true, 0f);
        b.routeExperts(logits, numTokens, routing);
        float[] out = new float[2 * numTokens * NUM_USED + NUM_EXPERTS];
        int at = 0;
        for (int t = 0; t < numTokens; t++)
            for (int s = 0; s < NUM_USED; s++) { out[at++] = routing.expert(t, s); out[at++] = routing.weight(t, s); }
        for (int e = 0; e < NUM_EXPERTS; e++) out[at++] = routing.count(e);
        return out;
    }

    private static float[] matmulGate(Backend b, long seed, TensorType type, int numTokens) {
        SplittableRandom random = new SplittableRandom(seed);
        Arena arena = Arena.ofAuto();  // the CPU backend reads weights in place
        Weight[] gate = experts(b, arena, random, "gate", type, HIDDEN, DIM);
        ExpertRouting routing = fixedRouting(random, numTokens);
        Activations x = upload(b, gaussian(random, numTokens * DIM, 1f), numTokens, DIM), out = b.allocate(numTokens * NUM_USED, HIDDEN);
        b.matmulExperts(gate, x, false, routing, out);
        return download(b, out, numTokens * NUM_USED);
    }

    /** MoeFeedForward's expert half: gate and up together, swiglu per slot, down per slot, combined into x. */
    private static float[] layer(Backend b, long seed, TensorType type, int numTokens) {
        SplittableRandom random = new SplittableRandom(seed);
        Arena arena = Arena.ofAuto();
        Weight[] gate = experts(b, arena, random, "gate", type, HIDDEN, DIM), up = experts(b, arena, random, "up", type, HIDDEN, DIM);
        Weight[] down = experts(b, arena, random, "down", type, DIM, HIDDEN);
        ExpertRouting routing = fixedRouting(random, numTokens);
        int numSlots = numTokens * NUM_USED;
        Activations xb = upload(b, gaussian(random, numTokens * DIM, 1f), numTokens, DIM), x = upload(b, gaussian(random, numTokens * DIM, 1f), numTokens, DIM);
        Activations g = b.allocate(numSlots, HIDDEN), u = b.allocate(numSlots, HIDDEN), slots = b.allocate(numSlots, DIM);
        b.matmulExpertsGateUp(gate, up, xb, routing, g, u);
        float[] gateOut = download(b, g, numSlots), upOut = download(b, u, numSlots);
        b.swiglu(g, u, numSlots);
        b.matmulExperts(down, g, true, routing, slots);
        float[] slotsOut = download(b, slots, numSlots);
        b.combineExperts(slots, routing, x);
        return concat(gateOut, upOut, slotsOut, download(b, x, numTokens));
    }

    private static float[] combine(Backend b, long seed, int width) {
        SplittableRandom random = new SplittableRandom(seed);
        int numTokens = 7;
        ExpertRouting routing = fixedRouting(random, numTokens);
        Activations slots = upload(b, gaussian(random, numTokens * NUM_USED * width, 1f), numTokens * NUM_USED, width);
        Activations acc = upload(b, gaussian(random, numTokens * width, 1f), numTokens, width);
        b.combineExperts(slots, routing, acc);
        return download(b, acc, numTokens);
    }

    private static float[] addSigmoidGated(Backend b, long seed, int width) {
        SplittableRandom random = new SplittableRandom(seed);
        int numTokens = 7;
        Activations acc = upload(b, gaussian(random, numTokens * width, 1f), numTokens, width);
        Activations x = upload(b, gaussian(random, numTokens * width, 1f), numTokens, width);
        Activations gate = upload(b, gaussian(random, numTokens, 3f), numTokens, 1);
        b.addSigmoidGated(acc, x, gate, numTokens);
        return download(b, acc, numTokens);
    }
}
