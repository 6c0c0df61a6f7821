package dev.tessera.serving.cli;

import dev.tessera.scheduler.placement.ExpertPlacer;
import dev.tessera.scheduler.placement.HopCost;
import dev.tessera.scheduler.placement.Placement;
import dev.tessera.scheduler.placement.RoutingTrace;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * {@code tessera place}: ExFlow expert placement from a routing trace, with its evaluation against contiguous and
 * round-robin placement on tokens it was not fitted on.
 */
public final class PlaceCommand implements Command {
    private static final Set<String> KNOWN = Set.of("trace", "devices", "nodes", "out", "time-limit", "max-direct-parts",
            "eval-trace", "holdout", "no-solver", "workers");
    private static final Set<String> FLAGS = Set.of("holdout", "no-solver");

    @Override public String name() { return "place"; }

    @Override public String summary() { return "place MoE experts on devices from a routing trace (ExFlow, CP-SAT)"; }

    @Override
    public String usage() {
        return """
                usage: tessera place --trace TRACE --devices D [--nodes N] --out PLACEMENT.json [--time-limit 10]
                                     [--holdout | --eval-trace TRACE2] [--max-direct-parts 8] [--no-solver] [--workers 2]

                Chooses, per MoE layer, the device of each expert so that tokens change device between consecutive
                layers as rarely as the trace allows (ExFlow, arXiv 2401.08383): an integer program solved with
                OR-Tools CP-SAT (x[l,e,d] binary, each expert on one device, E/D experts per device per layer,
                maximise the tokens that stay), warm-started over 25%%, 50%% and 100%% of the tokens from a greedy
                solution, which is also the fallback. With --nodes, experts are split over nodes first (an
                inter-node hop costs 2), then over each node's GPUs; splits into more than --max-direct-parts parts
                are done by recursive bisection.

                Prints, for contiguous, round-robin and the chosen placement, cross-device hops per token-layer (a
                token's hidden state moves from its first-choice expert's device at layer l to each of its top-k
                experts' devices at layer l+1) on the evaluation tokens, and the solver time.

                  --trace FILE            from tessera trace-routing
                  --devices D             devices in all (divides the experts per layer)
                  --nodes N               nodes (divides D; default 1)
                  --out FILE              the placement, JSON: device_of_expert[layer][expert]
                  --time-limit S          solver seconds per split, all sample stages together (default 10)
                  --holdout               fit on even-numbered sequences, evaluate on odd ones
                  --eval-trace FILE       evaluate on another trace instead
                  --max-direct-parts P    largest split solved in one program (default 8)
                  --no-solver             greedy only
                  --workers W             CP-SAT search workers (default 2)""";
    }

    @Override
    public int run(List<String> argv) {
        CliArgs args = new CliArgs(argv, KNOWN, FLAGS);
        Path tracePath = Path.of(args.require("trace"));
        Path out = Path.of(args.require("out"));
        int devices = args.getInt("devices", 0, 1, 4096);
        if (!args.has("devices")) throw new CliArgs.UsageException("--devices is required");
        int nodes = args.getInt("nodes", 1, 1, 4096);
        double limit = args.getDouble("time-limit", 10, 0.1, 86400);
        int maxDirect = args.getInt("max-direct-parts", 8, 2, 4096);
        int workers = args.getInt("workers", 2, 1, 256);
        if (args.has("holdout") && args.has("eval-trace")) throw new CliArgs.UsageException("--holdout and --eval-trace exclude each other");
        if (!Files.isRegularFile(tracePath)) throw new CliArgs.UsageException("--trace: " + tracePath + " is not a file");
        ExpertPlacer.Options options;
        try {
            options = new ExpertPlacer.Options(devices, nodes, limit, maxDirect, !args.has("no-solver"), workers);
        } catch (IllegalArgumentException e) {
            throw new CliArgs.UsageException(e.getMessage());
        }
        RoutingTrace trace = RoutingTrace.read(tracePath);
        if (trace.numExperts() % devices != 0)
            throw new CliArgs.UsageException("--devices " + devices + " does not divide the trace's " + trace.numExperts() + " experts per layer");
        RoutingTrace fit = trace, eval = trace;
        if (args.has("holdout")) {
            fit = trace.ofSequences(s -> s % 2 == 0);
            eval = trace.ofSequences(s -> s % 2 == 1);
            if (fit.numTokens() == 0 || eval.numTokens() == 0) throw new CliArgs.UsageException("--holdout needs at least two sequences in the trace");
        } else if (args.has("eval-trace")) {
            eval = RoutingTrace.read(Path.of(args.get("eval-trace", null)));
            if (eval.numLayers() != trace.numLayers() || eval.numExperts() != trace.numExperts())
                throw new CliArgs.UsageException("--eval-trace has " + eval.numLayers() + " layers x " + eval.numExperts() + " experts, --trace " + trace.numLayers() + " x " + trace.numExperts());
        }

        ExpertPlacer placer = new ExpertPlacer(options);
        Placement placement = placer.place(fit);
        if (placer.solverNote() != null && !args.has("no-solver")) System.err.println("place: " + placer.solverNote() + "; greedy placement");
        for (String line : placer.log()) System.err.println("place: " + line);
        placement.write(out, trace.model());

        int l = trace.numLayers(), e = trace.numExperts();
        double contiguous = HopCost.perTokenLayer(Placement.contiguous(l, e, devices, nodes), eval);
        double roundRobin = HopCost.perTokenLayer(Placement.roundRobin(l, e, devices, nodes), eval);
        double chosen = HopCost.perTokenLayer(placement, eval);
        System.out.printf(Locale.ROOT, "trace %s: %d layers x %d experts, top-%d; fitted on %d tokens, evaluated on %d%s%n",
                trace.model(), l, e, trace.topK(), fit.numTokens(), eval.numTokens(), fit == eval ? " (the same tokens)" : " held-out tokens");
        System.out.printf(Locale.ROOT, "devices %d, nodes %d (inter-node hop costs %d)%n", devices, nodes, HopCost.INTER_NODE);
        System.out.printf(Locale.ROOT, "%-14s %s%n", "placement", "hops per token-layer");
        System.out.printf(Locale.ROOT, "%-14s %.4f%n", "contiguous", contiguous);
        System.out.printf(Locale.ROOT, "%-14s %.4f%n", "round-robin", roundRobin);
        System.out.printf(Locale.ROOT, "%-14s %.4f  (%.1f%% fewer than contiguous; %.2f s)%n", placement.method(), chosen,
                contiguous == 0 ? 0 : 100 * (1 - chosen / contiguous), placement.solveSeconds());
        System.out.println(out);
        return 0;
    }
}
