package dev.tessera.scheduler.placement;

/**
 * Inter-layer expert affinity from a trace (ExFlow, arXiv 2401.08383, section 3): {@code count(l, i, j)} is how many
 * tokens whose first-choice expert at layer l is i were sent to expert j at layer l+1 (any of their top-k slots).
 * A token's hidden state lives where its first-choice expert ran, so count(l, i, j) tokens cross from i's device to
 * j's device when those differ: this is the quantity placement minimises. {@link #probability} is
 * P(j at l+1 | i at l), the count normalised over j.
 */
public final class ExpertAffinity {
    private final int numLayers, numExperts;
    private final long[][][] counts;  // [l][i][j], l in 0..numLayers-2
    private final long[][] firsts;    // [l][i] tokens with first choice i at l

    private ExpertAffinity(int numLayers, int numExperts) {
        this.numLayers = numLayers;
        this.numExperts = numExperts;
        this.counts = new long[Math.max(0, numLayers - 1)][numExperts][numExperts];
        this.firsts = new long[numLayers][numExperts];
    }

    public static ExpertAffinity of(RoutingTrace trace) {
        ExpertAffinity a = new ExpertAffinity(trace.numLayers(), trace.numExperts());
        for (int t = 0; t < trace.numTokens(); t++)
            for (int l = 0; l < trace.numLayers(); l++) {
                int home = trace.expert(t, l, 0);
                a.firsts[l][home]++;
                if (l + 1 < trace.numLayers()) for (int s = 0; s < trace.topK(); s++) a.counts[l][home][trace.expert(t, l + 1, s)]++;
            }
        return a;
    }

    public int numLayers() { return numLayers; }
    public int numExperts() { return numExperts; }

    /** Tokens with first choice i at layer l sent to j at l+1. */
    public long count(int l, int i, int j) {
        return counts[l][i][j];
    }

    /** P(expert j at layer l+1 | first choice i at layer l); 0 when no token chose i at l. */
    public double probability(int l, int i, int j) {
        long total = 0;
        for (int k = 0; k < numExperts; k++) total += counts[l][i][k];
        return total == 0 ? 0 : (double) counts[l][i][j] / total;
    }

    /** Mean over (l, i) of the largest P(j | i): 1/E-ish without affinity, 1 for a deterministic chain (top-1). */
    public double meanTopProbability() {
        double sum = 0;
        int n = 0;
        for (int l = 0; l + 1 < numLayers; l++)
            for (int i = 0; i < numExperts; i++) {
                if (firsts[l][i] == 0) continue;
                double best = 0;
                for (int j = 0; j < numExperts; j++) best = Math.max(best, probability(l, i, j));
                sum += best;
                n++;
            }
        return n == 0 ? 0 : sum / n;
    }
}
