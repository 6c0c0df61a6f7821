package dev.tessera.scheduler.placement;

/**
 * One split of a placement: the experts of a group (per layer, {@code experts[l]}, global ids, the same count m every
 * layer) into {@code parts} equal parts, maximising the affinity weight kept inside a part, i.e. minimising the tokens
 * that change part between consecutive layers. {@code weight[l][a][b]} is the count of tokens going from the group's
 * a-th expert at layer l to its b-th at l+1 (from {@link ExpertAffinity}). A solution is {@code part[l][a]}.
 */
record PartitionProblem(int[][] experts, int parts, long[][][] weight) {

    static PartitionProblem of(int[][] experts, int parts, ExpertAffinity affinity) {
        int numLayers = experts.length, m = experts[0].length;
        if (m % parts != 0) throw new IllegalArgumentException(m + " experts per layer cannot be split into " + parts + " equal parts");
        long[][][] w = new long[Math.max(0, numLayers - 1)][m][m];
        for (int l = 0; l + 1 < numLayers; l++)
            for (int a = 0; a < m; a++)
                for (int b = 0; b < m; b++) w[l][a][b] = affinity.count(l, experts[l][a], experts[l + 1][b]);
        return new PartitionProblem(experts, parts, w);
    }

    int numLayers() { return experts.length; }
    int groupSize() { return experts[0].length; }
    int capacity() { return groupSize() / parts; }

    /** Affinity weight kept inside parts by a solution (higher is better). */
    long kept(int[][] part) {
        long kept = 0;
        for (int l = 0; l + 1 < numLayers(); l++)
            for (int a = 0; a < groupSize(); a++)
                for (int b = 0; b < groupSize(); b++) if (part[l][a] == part[l + 1][b]) kept += weight[l][a][b];
        return kept;
    }
}
