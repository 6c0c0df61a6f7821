package dev.tessera.serving.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.kernels.collective.CollectiveKind;
import dev.tessera.models.arch.ExpertParallelFeedForward;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.scheduler.expert.ExpertParallelRunner;
import dev.tessera.scheduler.parallel.TensorParallelWorker;
import dev.tessera.scheduler.parallel.TpProtocol;
import dev.tessera.scheduler.placement.Placement;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The device-0 options of {@code serve}, {@code generate} and {@code bench} for expert parallelism (ExFlow):
 * {@code --expert-workers}, {@code --expert-placement}, {@code --expert-mode} and the collective's routes.
 */
final class ExpertParallelOptions {
    static final Set<String> OPTIONS = Set.of("expert-workers", "expert-placement", "expert-mode", "expert-collective-listen", "expert-collective-via");

    static final String USAGE = "\n" + """
              --expert-workers H:P,...  expert parallelism: these 'tessera expert-worker' processes are devices 1..N,
                                       this one is device 0; each holds its share of every MoE layer's experts
              --expert-placement P     contiguous (default), round-robin, or a placement.json from 'tessera place'
              --expert-mode M          coherent (default; ExFlow: every device keeps every sequence's context, one
                                       exchange per MoE layer) or baseline (attention data-parallel, two all-to-alls)
              --expert-collective-listen H:P  bind device 0's collective listener here (default: a free port)
              --expert-collective-via H:P,... per worker, the address it reaches that listener at (a 'tessera linkemu')""".indent(2).stripTrailing();

    private ExpertParallelOptions() {}

    static ExpertParallelRunner open(CliArgs args, GgufFile file, ModelConfig config, int threads, int maxBatchTokens, int maxLogitRows) {
        if (args.has("tp-workers") || args.has("attention-workers"))
            throw new CliArgs.UsageException("--expert-workers cannot be combined with --tp-workers or --attention-workers in this build");
        if (!config.isMoe())
            throw new CliArgs.UsageException("--expert-workers: " + file.path().getFileName() + " is not a mixture-of-experts model");
        List<InetSocketAddress> workers = addresses("--expert-workers", args.require("expert-workers"));
        int devices = workers.size() + 1;
        ExpertParallelFeedForward.Mode mode;
        CollectiveKind kind;
        try {
            mode = ExpertParallelFeedForward.Mode.parse(args.get("expert-mode", "coherent"));
            kind = TensorParallelOptions.collective(args.get("collective", "auto"));
        } catch (IllegalArgumentException e) {
            throw new CliArgs.UsageException(e.getMessage());
        }
        Placement placement = placement(args.get("expert-placement", "contiguous"), config, devices);
        InetSocketAddress listen = args.has("expert-collective-listen")
                ? addresses("--expert-collective-listen", args.get("expert-collective-listen", "")).getFirst() : null;
        List<InetSocketAddress> via = args.has("expert-collective-via") ? addresses("--expert-collective-via", args.get("expert-collective-via", "")) : List.of();
        if (!via.isEmpty() && via.size() != workers.size())
            throw new CliArgs.UsageException("--expert-collective-via has " + via.size() + " addresses for " + workers.size() + " workers (one per worker, in order)");
        if (!via.isEmpty() && listen == null)
            throw new CliArgs.UsageException("--expert-collective-via needs --expert-collective-listen (the fixed port the routes lead to)");
        return new ExpertParallelRunner(file, config, Devices.backend(args, threads), workers, placement.device(), mode, kind,
                maxBatchTokens, maxLogitRows, Duration.ofSeconds(60), listen, via);
    }

    /** A named layout, or a placement file checked against the model and the number of devices. */
    static Placement placement(String value, ModelConfig config, int devices) {
        int layers = config.numLayers(), experts = config.moe().numExperts();
        try {
            if (value.equals("contiguous")) return Placement.contiguous(layers, experts, devices, 1);
            if (value.equals("round-robin")) return Placement.roundRobin(layers, experts, devices, 1);
        } catch (IllegalArgumentException e) {
            throw new CliArgs.UsageException("--expert-placement " + value + ": " + e.getMessage());
        }
        Path path = Path.of(value);
        if (!Files.isRegularFile(path))
            throw new CliArgs.UsageException("--expert-placement: '" + value + "' is neither contiguous, round-robin nor a placement file");
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(path.toFile());
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            String why = e.getOriginalMessage().lines().findFirst().orElse("").replaceAll(" \\(start marker.*", "");
            String at = e.getLocation() == null ? "" : " at line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr();
            throw new CliArgs.UsageException("--expert-placement " + value + ": not valid JSON" + at + ": " + why);
        } catch (IOException e) {
            throw new CliArgs.UsageException("--expert-placement " + value + ": cannot read: " + e.getMessage());
        }
        String where = "--expert-placement " + value + ": ";
        if (root == null || !"tessera-expert-placement".equals(root.path("format").asText()))
            throw new CliArgs.UsageException(where + "not a placement file (no \"format\": \"tessera-expert-placement\"; make one with 'tessera place')");
        JsonNode table = root.path("device_of_expert");
        int fileDevices = root.path("num_devices").asInt(-1), nodes = root.path("num_nodes").asInt(1);
        if (fileDevices != devices)
            throw new CliArgs.UsageException(where + "places experts on " + fileDevices + " devices; this run has " + devices + " (this process and " + (devices - 1) + " workers)");
        // A placement fitted on a trace covers the layers that route: DeepSeek's leading dense ones hold no experts, and
        // get the contiguous rows the loader needs.
        int lead = config.moe().leadingDenseLayers();
        if (!table.isArray() || (table.size() != layers && table.size() != layers - lead))
            throw new CliArgs.UsageException(where + "device_of_expert has " + (table.isArray() ? table.size() : 0) + " layers; the model has " + layers
                    + (lead > 0 ? " (" + (layers - lead) + " after its " + lead + " dense ones)" : ""));
        int first = layers - table.size();
        int[][] device = new int[layers][experts];
        if (first > 0) {
            try {
                System.arraycopy(Placement.contiguous(first, experts, devices, 1).device(), 0, device, 0, first);
            } catch (IllegalArgumentException e) {
                throw new CliArgs.UsageException(where + e.getMessage());
            }
        }
        for (int l = first; l < layers; l++) {
            JsonNode row = table.get(l - first);
            if (!row.isArray() || row.size() != experts)
                throw new CliArgs.UsageException(where + "layer " + l + " places " + (row.isArray() ? row.size() : 0) + " experts; the model has " + experts);
            for (int e = 0; e < experts; e++) {
                if (!row.get(e).isInt()) throw new CliArgs.UsageException(where + "layer " + l + ", expert " + e + ": '" + row.get(e) + "' is not a device number");
                device[l][e] = row.get(e).asInt();
            }
        }
        try {
            return new Placement(root.path("method").asText("file"), devices, nodes, device, root.path("solve_seconds").asDouble(0));
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw new CliArgs.UsageException(where + e.getMessage());
        }
    }

    private static List<InetSocketAddress> addresses(String flag, String list) {
        List<InetSocketAddress> out = new ArrayList<>();
        for (String s : list.split(",")) {
            try {
                out.add(TensorParallelWorker.parseAddress(s.trim()));
            } catch (TpProtocol.ProtocolException e) {
                throw new CliArgs.UsageException(flag + ": " + e.getMessage());
            }
        }
        return out;
    }
}
