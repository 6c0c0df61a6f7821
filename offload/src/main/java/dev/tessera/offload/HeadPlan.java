package dev.tessera.offload;

import java.util.Arrays;

/**
 * Which KV heads (and so which query heads, {@code numHeads / numKvHeads} per KV head) each memory node holds:
 * contiguous ranges sized in proportion to the nodes' weights ({@code --attention-weights}), as Lamina balances
 * attention load. Every node gets at least one KV head.
 */
public record HeadPlan(int numHeads, int numKvHeads, int[] kvFrom) {

    public static HeadPlan split(int numHeads, int numKvHeads, int[] weights) {
        int n = weights.length;
        if (n < 1) throw new IllegalArgumentException("no memory nodes");
        if (n > numKvHeads)
            throw new IllegalArgumentException(n + " memory nodes for a model with " + numKvHeads + " KV heads: each node needs at least one");
        long total = 0;
        for (int w : weights) {
            if (w < 1) throw new IllegalArgumentException("--attention-weights entries must be >= 1, found " + w);
            total += w;
        }
        int[] from = new int[n + 1];
        long acc = 0;
        for (int i = 0; i < n; i++) {
            acc += weights[i];
            // Round the cumulative share, then keep at least one head for each node on either side.
            int end = (int) Math.round((double) acc * numKvHeads / total);
            from[i + 1] = Math.max(from[i] + 1, Math.min(end, numKvHeads - (n - 1 - i)));
        }
        from[n] = numKvHeads;
        return new HeadPlan(numHeads, numKvHeads, from);
    }

    /** Parses {@code --attention-weights 1,2}. */
    public static int[] parseWeights(String s) {
        try {
            return Arrays.stream(s.split(",")).map(String::trim).mapToInt(Integer::parseInt).toArray();
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--attention-weights: expected comma-separated integers, found '" + s + "'");
        }
    }

    public int numNodes() { return kvFrom.length - 1; }
    public int groupSize() { return numHeads / numKvHeads; }
    public int kvHeadFrom(int node) { return kvFrom[node]; }
    public int kvHeadTo(int node) { return kvFrom[node + 1]; }
    public int numKvHeads(int node) { return kvFrom[node + 1] - kvFrom[node]; }
    public int numHeads(int node) { return numKvHeads(node) * groupSize(); }
    public int headFrom(int node) { return kvFrom[node] * groupSize(); }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < numNodes(); i++) s.append(i == 0 ? "" : ", ").append("KV heads ").append(kvHeadFrom(i)).append("..").append(kvHeadTo(i) - 1);
        return s.toString();
    }
}
