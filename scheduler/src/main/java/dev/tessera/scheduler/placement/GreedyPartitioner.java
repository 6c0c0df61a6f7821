package dev.tessera.scheduler.placement;

import java.util.Arrays;

/**
 * The fallback when the solver is absent or finds nothing in its time: layer 0 is split in order; each next layer is
 * filled by taking, largest first, the (expert, part) pair with the most tokens arriving from that part's experts of
 * the layer before, while the part has room. Then single swaps within a layer are tried while they keep more weight.
 */
final class GreedyPartitioner {
    private GreedyPartitioner() {}

    static int[][] solve(PartitionProblem p) {
        int numLayers = p.numLayers(), m = p.groupSize(), parts = p.parts(), cap = p.capacity();
        int[][] part = new int[numLayers][m];
        for (int a = 0; a < m; a++) part[0][a] = a / cap;
        for (int l = 0; l + 1 < numLayers; l++) {
            long[][] score = new long[m][parts];  // [b][q]: tokens into expert b at l+1 from part q at l
            for (int a = 0; a < m; a++) for (int b = 0; b < m; b++) score[b][part[l][a]] += p.weight()[l][a][b];
            int[] load = new int[parts];
            boolean[] placed = new boolean[m];
            Arrays.fill(part[l + 1], -1);
            for (int n = 0; n < m; n++) {
                int bestB = -1, bestQ = -1;
                long best = -1;
                for (int b = 0; b < m; b++) {
                    if (placed[b]) continue;
                    for (int q = 0; q < parts; q++) if (load[q] < cap && score[b][q] > best) { best = score[b][q]; bestB = b; bestQ = q; }
                }
                part[l + 1][bestB] = bestQ;
                placed[bestB] = true;
                load[bestQ]++;
            }
        }
        improveBySwaps(p, part);
        return part;
    }

    /** Swaps two experts of one layer between parts while that keeps more weight; a few passes at most. */
    private static void improveBySwaps(PartitionProblem p, int[][] part) {
        int m = p.groupSize();
        for (int pass = 0; pass < 4; pass++) {
            boolean improved = false;
            for (int l = 0; l < p.numLayers(); l++)
                for (int a = 0; a < m; a++)
                    for (int b = a + 1; b < m; b++) {
                        if (part[l][a] == part[l][b]) continue;
                        long before = local(p, part, l, a) + local(p, part, l, b);
                        swap(part[l], a, b);
                        long after = local(p, part, l, a) + local(p, part, l, b);
                        if (after > before) improved = true;
                        else swap(part[l], a, b);
                    }
            if (!improved) return;
        }
    }

    /** Weight kept by expert a of layer l with its neighbours in layers l-1 and l+1. */
    private static long local(PartitionProblem p, int[][] part, int l, int a) {
        long kept = 0;
        for (int x = 0; x < p.groupSize(); x++) {
            if (l > 0 && part[l - 1][x] == part[l][a]) kept += p.weight()[l - 1][x][a];
            if (l + 1 < p.numLayers() && part[l + 1][x] == part[l][a]) kept += p.weight()[l][a][x];
        }
        return kept;
    }

    private static void swap(int[] row, int a, int b) {
        int t = row[a];
        row[a] = row[b];
        row[b] = t;
    }
}
