package dev.tessera.kernels;

/**
 * Which experts each token of a step goes to, and with what weight: the router's result, plain data a backend reads.
 * Slot s of token t is index {@code t * numUsed + s}; slots are ordered by falling router probability, so slot 0 is a
 * token's first choice. {@link #group} sorts the slots by expert (a counting sort), so a grouped matmul reads each
 * expert's rows once for all of its tokens, as ggml's {@code mul_mat_id} does.
 * <p>
 * The rule is the model's: softmax over all {@code numExperts} router logits, the top {@code numUsed} probabilities,
 * renormalised to sum 1 when {@code normalize} (Mixtral; llama.cpp's {@code norm_w}), then multiplied by
 * {@code scale} unless it is 0 or 1 (llama.cpp's {@code expert_weights_scale}).
 */
public final class ExpertRouting {
    private final int maxTokens;
    private final int numExperts;
    private final int numUsed;
    private final boolean normalize;
    private final float scale;
    private final int[] ids;            // [maxTokens][numUsed] expert of each slot
    private final float[] weights;      // [maxTokens][numUsed] weight of each slot
    private final int[] expertStart;    // [numExperts + 1] start of each expert's run in slotsByExpert
    private final int[] slotsByExpert;  // [maxTokens * numUsed] slot indices, grouped by expert, ascending within one
    private final float[] probs;        // [numExperts] scratch of route()
    private final int[] cursor;         // [numExperts] scratch of group()
    private int numTokens;

    public ExpertRouting(int maxTokens, int numExperts, int numUsed, boolean normalize, float scale) {
        if (numExperts < 1 || numUsed < 1 || numUsed > numExperts)
            throw new IllegalArgumentException("expert_used_count " + numUsed + " must be in 1.." + numExperts);
        this.maxTokens = maxTokens;
        this.numExperts = numExperts;
        this.numUsed = numUsed;
        this.normalize = normalize;
        this.scale = scale;
        this.ids = new int[maxTokens * numUsed];
        this.weights = new float[maxTokens * numUsed];
        this.expertStart = new int[numExperts + 1];
        this.slotsByExpert = new int[maxTokens * numUsed];
        this.probs = new float[numExperts];
        this.cursor = new int[numExperts];
    }

    public int maxTokens() { return maxTokens; }
    public int numExperts() { return numExperts; }
    public int numUsed() { return numUsed; }
    public int numTokens() { return numTokens; }
    public boolean normalize() { return normalize; }
    public float scale() { return scale; }

    /** Expert of slot s of token t. */
    public int expert(int t, int s) { return ids[t * numUsed + s]; }

    /** Weight of slot s of token t. */
    public float weight(int t, int s) { return weights[t * numUsed + s]; }

    /** Slots routed to expert e: {@code slot(e, i)} for i in [0, count(e)). Valid after {@link #group}. */
    public int count(int e) { return expertStart[e + 1] - expertStart[e]; }

    public int slot(int e, int i) { return slotsByExpert[expertStart[e] + i]; }

    /**
     * Routes rows [0, numTokens) of {@code logits} ([numTokens][numExperts], row t at t * numExperts) and groups the
     * slots by expert. Ties in probability go to the lower expert id.
     */
    public void route(float[] logits, int numTokens) {
        if (numTokens < 0 || numTokens > maxTokens) throw new IllegalArgumentException("routing " + numTokens + " tokens, limit " + maxTokens);
        this.numTokens = numTokens;
        for (int t = 0; t < numTokens; t++) routeToken(logits, t * numExperts, t * numUsed);
        group();
    }

    /** Sets the slots directly (tests, a trace replay) and groups them. */
    public void set(int numTokens, int[] ids, float[] weights) {
        if (numTokens < 0 || numTokens > maxTokens) throw new IllegalArgumentException("routing " + numTokens + " tokens, limit " + maxTokens);
        for (int i = 0; i < numTokens * numUsed; i++)
            if (ids[i] < 0 || ids[i] >= numExperts) throw new IllegalArgumentException("expert id " + ids[i] + " outside 0.." + (numExperts - 1));
        this.numTokens = numTokens;
        System.arraycopy(ids, 0, this.ids, 0, numTokens * numUsed);
        System.arraycopy(weights, 0, this.weights, 0, numTokens * numUsed);
        group();
    }

    private void routeToken(float[] logits, int in, int out) {
        float max = Float.NEGATIVE_INFINITY;
        for (int e = 0; e < numExperts; e++) max = Math.max(max, logits[in + e]);
        float sum = 0;
        for (int e = 0; e < numExperts; e++) {
            probs[e] = (float) Math.exp(logits[in + e] - max);
            sum += probs[e];
        }
        for (int e = 0; e < numExperts; e++) probs[e] /= sum;
        // Top-k by selection: k is 1-8, so k passes over a few dozen probabilities beat a sort.
        float picked = 0;
        for (int s = 0; s < numUsed; s++) {
            int best = -1;
            for (int e = 0; e < numExperts; e++) {
                if (probs[e] < 0) continue;  // taken
                if (best < 0 || probs[e] > probs[best]) best = e;
            }
            if (best < 0) throw new IllegalStateException("router logits are not finite at row " + in / numExperts);
            ids[out + s] = best;
            weights[out + s] = probs[best];
            picked += probs[best];
            probs[best] = -1;
        }
        if (normalize) {
            // As llama.cpp: the sum is clamped to F16's smallest normal so a degenerate row cannot divide by zero.
            float divisor = Math.max(picked, 6.103515625e-5f);
            for (int s = 0; s < numUsed; s++) weights[out + s] /= divisor;
        }
        if (scale != 0f && scale != 1f) for (int s = 0; s < numUsed; s++) weights[out + s] *= scale;
    }

    private void group() {
        java.util.Arrays.fill(expertStart, 0);
        int numSlots = numTokens * numUsed;
        for (int i = 0; i < numSlots; i++) expertStart[ids[i] + 1]++;
        for (int e = 0; e < numExperts; e++) expertStart[e + 1] += expertStart[e];
        java.util.Arrays.fill(cursor, 0);
        for (int i = 0; i < numSlots; i++) {
            int e = ids[i];
            slotsByExpert[expertStart[e] + cursor[e]++] = i;
        }
    }
}
