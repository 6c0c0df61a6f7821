package dev.tessera.kernels;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The router's softmax top-k with each normalisation rule, and the grouping of slots by expert. */
class ExpertRoutingTest {

    @Test
    void mixtralRuleRenormalisesTheTopK() {
        ExpertRouting r = new ExpertRouting(2, 4, 2, true, 0f);
        r.route(new float[] {1f, 3f, 2f, 0f, /* token 1 */ 0f, 0f, 5f, 5f}, 2);
        assertEquals(1, r.expert(0, 0));
        assertEquals(2, r.expert(0, 1));
        // softmax then renormalised over the two kept: e^3 / (e^3 + e^2)
        double w0 = Math.exp(3) / (Math.exp(3) + Math.exp(2));
        assertEquals(w0, r.weight(0, 0), 1e-6);
        assertEquals(1 - w0, r.weight(0, 1), 1e-6);
        // a tie goes to the lower id first
        assertEquals(2, r.expert(1, 0));
        assertEquals(3, r.expert(1, 1));
        assertEquals(0.5f, r.weight(1, 0), 1e-6);
    }

    @Test
    void qwen2MoeRuleKeepsTheSoftmaxProbabilities() {
        ExpertRouting r = new ExpertRouting(1, 4, 2, false, 0f);
        float[] logits = {1f, 3f, 2f, 0f};
        r.route(logits, 1);
        double z = Math.exp(1) + Math.exp(3) + Math.exp(2) + Math.exp(0);
        assertEquals(Math.exp(3) / z, r.weight(0, 0), 1e-6);
        assertEquals(Math.exp(2) / z, r.weight(0, 1), 1e-6);
    }

    @Test
    void scaleMultipliesTheWeightsUnlessZeroOrOne() {
        ExpertRouting scaled = new ExpertRouting(1, 3, 1, true, 2.5f);
        scaled.route(new float[] {0f, 1f, 0f}, 1);
        assertEquals(2.5f, scaled.weight(0, 0), 1e-6);
        ExpertRouting plain = new ExpertRouting(1, 3, 1, true, 1f);
        plain.route(new float[] {0f, 1f, 0f}, 1);
        assertEquals(1f, plain.weight(0, 0), 1e-6);
    }

    /** Against an independent sort-based reference on random logits: ids in order, weights, and the grouping. */
    @Test
    void matchesSortReferenceAndGroupsEverySlotOnce() {
        Random random = new Random(7);
        int n = 37, experts = 16, k = 4;
        float[] logits = new float[n * experts];
        for (int i = 0; i < logits.length; i++) logits[i] = (float) random.nextGaussian() * 3;
        ExpertRouting r = new ExpertRouting(64, experts, k, true, 0f);
        r.route(logits, n);
        for (int t = 0; t < n; t++) {
            Integer[] order = new Integer[experts];
            for (int e = 0; e < experts; e++) order[e] = e;
            int base = t * experts;
            java.util.Arrays.sort(order, (a, b) -> Float.compare(logits[base + b], logits[base + a]));
            double kept = 0;
            for (int s = 0; s < k; s++) kept += Math.exp(logits[base + order[s]]);
            for (int s = 0; s < k; s++) {
                assertEquals(order[s], r.expert(t, s), "token " + t + " slot " + s);
                assertEquals(Math.exp(logits[base + order[s]]) / kept, r.weight(t, s), 1e-5, "token " + t + " slot " + s);
            }
        }
        int[] seen = new int[n * k];
        int total = 0;
        for (int e = 0; e < experts; e++)
            for (int i = 0; i < r.count(e); i++) {
                int slot = r.slot(e, i);
                assertEquals(e, r.expert(slot / k, slot % k));
                if (i > 0) assertEquals(true, slot > r.slot(e, i - 1), "slots ascend within an expert");
                seen[slot]++;
                total++;
            }
        assertEquals(n * k, total);
        int[] ones = new int[n * k];
        java.util.Arrays.fill(ones, 1);
        assertArrayEquals(ones, seen);
    }

    @Test
    void rejectsBadShapesAndIds() {
        assertThrows(IllegalArgumentException.class, () -> new ExpertRouting(4, 4, 5, true, 0f));
        ExpertRouting r = new ExpertRouting(2, 4, 1, true, 0f);
        assertThrows(IllegalArgumentException.class, () -> r.route(new float[12], 3));
        assertThrows(IllegalArgumentException.class, () -> r.set(1, new int[] {4}, new float[] {1f}));
    }
}
