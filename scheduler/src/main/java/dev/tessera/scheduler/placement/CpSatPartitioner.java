package dev.tessera.scheduler.placement;

import com.google.ortools.Loader;
import com.google.ortools.sat.BoolVar;
import com.google.ortools.sat.CpModel;
import com.google.ortools.sat.CpSolver;
import com.google.ortools.sat.CpSolverStatus;
import com.google.ortools.sat.LinearArgument;
import com.google.ortools.sat.LinearExpr;

import java.util.ArrayList;
import java.util.List;

/**
 * A {@link PartitionProblem} as an integer program for OR-Tools CP-SAT (ExFlow's formulation, arXiv 2401.08383
 * section 4): x[l][a][q] = expert a of layer l is in part q; each expert in exactly one part; each part holds
 * groupSize / parts experts per layer; together[l][a][b][q] may be 1 only when a (layer l) and b (layer l+1) are both
 * in q; maximise the sum of weight * together, the tokens that stay in their part. Pairs with no tokens get no
 * variables, so a small token sample gives a small model.
 */
final class CpSatPartitioner {
    private static final Object LOAD_LOCK = new Object();
    private static volatile String loadFailure;
    private static volatile boolean loaded;

    private CpSatPartitioner() {}

    /** Loads the solver's native library once; null when it loaded, else why not (one line). */
    static String availability() {
        synchronized (LOAD_LOCK) {
            if (!loaded && loadFailure == null) {
                try {
                    Loader.loadNativeLibraries();
                    loaded = true;
                } catch (Throwable e) {  // a missing or incompatible native library: fall back to greedy
                    loadFailure = "OR-Tools CP-SAT unavailable: " + e;
                }
            }
            return loadFailure;
        }
    }

    /** The best part assignment found (null: none in time), the solver's status and its wall time. */
    record Result(int[][] part, String status, double seconds) {}

    /** Solves within {@code seconds}, starting from {@code hint} (may be null). */
    static Result solve(PartitionProblem p, int[][] hint, double seconds, int numWorkers) {
        if (availability() != null) return new Result(null, "UNAVAILABLE", 0);
        int numLayers = p.numLayers(), m = p.groupSize(), parts = p.parts();
        CpModel model = new CpModel();
        BoolVar[][][] x = new BoolVar[numLayers][m][parts];
        for (int l = 0; l < numLayers; l++)
            for (int a = 0; a < m; a++) {
                for (int q = 0; q < parts; q++) x[l][a][q] = model.newBoolVar("x_" + l + "_" + a + "_" + q);
                model.addExactlyOne(x[l][a]);
            }
        for (int l = 0; l < numLayers; l++)
            for (int q = 0; q < parts; q++) {
                BoolVar[] column = new BoolVar[m];
                for (int a = 0; a < m; a++) column[a] = x[l][a][q];
                model.addEquality(LinearExpr.sum(column), p.capacity());
            }
        // Parts are interchangeable: pin layer 0's first expert to part 0.
        model.addEquality(x[0][0][0], 1);
        List<LinearArgument> kept = new ArrayList<>();
        List<Long> weights = new ArrayList<>();
        int[] relabel = hint == null ? null : pinned(hint, parts);
        for (int l = 0; l + 1 < numLayers; l++)
            for (int a = 0; a < m; a++)
                for (int b = 0; b < m; b++) {
                    long w = p.weight()[l][a][b];
                    if (w == 0) continue;
                    for (int q = 0; q < parts; q++) {
                        BoolVar together = model.newBoolVar("t_" + l + "_" + a + "_" + b + "_" + q);
                        model.addImplication(together, x[l][a][q]);
                        model.addImplication(together, x[l + 1][b][q]);
                        kept.add(together);
                        weights.add(w);
                        // A complete hint (x and these), so the solver starts from a feasible solution, not a partial one.
                        if (hint != null) model.addHint(together, relabel[hint[l][a]] == q && relabel[hint[l + 1][b]] == q ? 1 : 0);
                    }
                }
        long[] coefficients = new long[weights.size()];
        for (int i = 0; i < coefficients.length; i++) coefficients[i] = weights.get(i);
        model.maximize(LinearExpr.weightedSum(kept.toArray(new LinearArgument[0]), coefficients));
        if (hint != null) {
            for (int l = 0; l < numLayers; l++)
                for (int a = 0; a < m; a++)
                    for (int q = 0; q < parts; q++) model.addHint(x[l][a][q], relabel[hint[l][a]] == q ? 1 : 0);
        }
        CpSolver solver = new CpSolver();
        solver.getParameters().setMaxTimeInSeconds(seconds);
        solver.getParameters().setNumWorkers(numWorkers);
        solver.getParameters().setRandomSeed(1);
        CpSolverStatus status = solver.solve(model);
        if (status != CpSolverStatus.OPTIMAL && status != CpSolverStatus.FEASIBLE) return new Result(null, status.name(), solver.wallTime());
        int[][] part = new int[numLayers][m];
        for (int l = 0; l < numLayers; l++)
            for (int a = 0; a < m; a++)
                for (int q = 0; q < parts; q++) if (solver.booleanValue(x[l][a][q])) part[l][a] = q;
        return new Result(part, status.name(), solver.wallTime());
    }

    /** A relabelling of the hint's parts that puts layer 0's first expert in part 0, as the model requires. */
    private static int[] pinned(int[][] hint, int parts) {
        int[] relabel = new int[parts];
        for (int q = 0; q < parts; q++) relabel[q] = q;
        int first = hint[0][0];
        relabel[first] = 0;
        relabel[0] = first;
        return relabel;
    }
}
