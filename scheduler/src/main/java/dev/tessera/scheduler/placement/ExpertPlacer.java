package dev.tessera.scheduler.placement;

import java.util.ArrayList;
import java.util.List;

/**
 * ExFlow's affinity-aware expert placement (arXiv 2401.08383): chooses, per layer, which device holds each expert so
 * that tokens change device between consecutive layers as rarely as the trace allows.
 * <ul>
 *   <li>Nodes before GPUs: experts are first split over nodes (an inter-node hop costs 2), then each node's experts over
 *       its GPUs.</li>
 *   <li>Recursive bisection: a split into more than {@code maxDirectParts} parts is done as halves, recursively, so the
 *       integer program stays small for many devices.</li>
 *   <li>Each split is an integer program ({@link CpSatPartitioner}) solved with a time limit, warm-started over growing
 *       token samples (a quarter, half, then all of the trace; each stage hinted with the last solution), starting from
 *       the greedy solution ({@link GreedyPartitioner}), which is also the fallback when the solver is absent or finds
 *       nothing in time.</li>
 * </ul>
 */
public final class ExpertPlacer {
    /** @param secondsPerSplit solver time for one split, all sample stages together */
    public record Options(int numDevices, int numNodes, double secondsPerSplit, int maxDirectParts, boolean useSolver, int numWorkers) {
        public Options {
            if (numDevices < 1 || numNodes < 1 || numDevices % numNodes != 0)
                throw new IllegalArgumentException("--devices " + numDevices + " must be a multiple of --nodes " + numNodes);
            if (maxDirectParts < 2) throw new IllegalArgumentException("maxDirectParts must be at least 2");
        }
    }

    /** Sample fractions of the warm start. */
    static final double[] STAGES = {0.25, 0.5, 1.0};

    private final Options options;
    private int solverSplits, greedySplits;
    private String solverNote;
    private final List<String> log = new ArrayList<>();

    public ExpertPlacer(Options options) {
        this.options = options;
    }

    /** One line per solver run: split, sample, status, time, weight kept. */
    public List<String> log() { return log; }

    private static long total(PartitionProblem p) {
        long t = 0;
        for (long[][] layer : p.weight()) for (long[] row : layer) for (long w : row) t += w;
        return t;
    }

    /** Why the solver was not used, if it was not (one line), else null. */
    public String solverNote() { return solverNote; }

    public Placement place(RoutingTrace trace) {
        int numLayers = trace.numLayers(), numExperts = trace.numExperts(), d = options.numDevices, n = options.numNodes;
        Placement.check(numExperts, d);
        if (options.useSolver) solverNote = CpSatPartitioner.availability();
        else solverNote = "solver disabled";
        ExpertAffinity[] stages = new ExpertAffinity[STAGES.length];
        for (int s = 0; s < STAGES.length; s++)
            stages[s] = ExpertAffinity.of(trace.head((int) Math.ceil(trace.numTokens() * STAGES[s])));
        long start = System.nanoTime();
        int[][] all = new int[numLayers][numExperts];
        for (int l = 0; l < numLayers; l++) for (int e = 0; e < numExperts; e++) all[l][e] = e;
        int[][] device = new int[numLayers][numExperts];
        if (n > 1) {
            // Nodes first, then each node's experts over its GPUs.
            List<int[][]> nodeGroups = split(all, n, stages);
            for (int node = 0; node < n; node++) assign(nodeGroups.get(node), d / n, node * (d / n), stages, device);
        } else {
            assign(all, d, 0, stages, device);
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        String method = solverSplits > 0 && greedySplits == 0 ? "cp-sat" : solverSplits == 0 ? "greedy" : "cp-sat+greedy";
        return new Placement(method, d, n, device, seconds);
    }

    /** Places a group's experts on devices [firstDevice, firstDevice + parts). */
    private void assign(int[][] group, int parts, int firstDevice, ExpertAffinity[] stages, int[][] device) {
        if (parts == 1) {
            for (int l = 0; l < group.length; l++) for (int e : group[l]) device[l][e] = firstDevice;
            return;
        }
        if (parts <= options.maxDirectParts || parts % 2 != 0) {
            List<int[][]> groups = split(group, parts, stages);
            for (int q = 0; q < parts; q++) assign(groups.get(q), 1, firstDevice + q, stages, device);
            return;
        }
        List<int[][]> halves = split(group, 2, stages);
        assign(halves.get(0), parts / 2, firstDevice, stages, device);
        assign(halves.get(1), parts / 2, firstDevice + parts / 2, stages, device);
    }

    /** Splits a group into {@code parts} equal groups: greedy, then the solver over growing samples. */
    private List<int[][]> split(int[][] group, int parts, ExpertAffinity[] stages) {
        PartitionProblem full = PartitionProblem.of(group, parts, stages[stages.length - 1]);
        int[][] best = GreedyPartitioner.solve(full);
        boolean solved = false;
        if (options.useSolver && solverNote == null) {
            int[][] hint = best;
            for (int k = 0; k < stages.length; k++) {
                PartitionProblem p = k == stages.length - 1 ? full : PartitionProblem.of(group, parts, stages[k]);
                // The last stage starts from the better (on all tokens) of the samples' solution and greedy.
                if (k == stages.length - 1 && full.kept(best) > full.kept(hint)) hint = best;
                CpSatPartitioner.Result r = CpSatPartitioner.solve(p, hint, options.secondsPerSplit / stages.length, options.numWorkers);
                log.add(String.format(java.util.Locale.ROOT, "split of %d experts/layer into %d, sample %.0f%%: %s in %.2f s%s", full.groupSize(), parts,
                        100 * STAGES[k], r.status(), r.seconds(), r.part() == null ? "" : ", keeps " + full.kept(r.part()) + " of " + total(full) + " (greedy " + full.kept(best) + ")"));
                if (r.part() != null) hint = r.part();
            }
            // Labelled cp-sat only when the solver kept strictly more than its greedy start.
            if (hint != best && full.kept(hint) > full.kept(best)) {
                best = hint;
                solved = true;
            }
        }
        if (solved) solverSplits++;
        else greedySplits++;
        List<int[][]> groups = new ArrayList<>();
        for (int q = 0; q < parts; q++) {
            int[][] g = new int[group.length][full.capacity()];
            for (int l = 0; l < group.length; l++) {
                int i = 0;
                for (int a = 0; a < full.groupSize(); a++) if (best[l][a] == q) g[l][i++] = group[l][a];
            }
            groups.add(g);
        }
        return groups;
    }
}
