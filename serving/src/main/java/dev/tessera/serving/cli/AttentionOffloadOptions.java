package dev.tessera.serving.cli;

import dev.tessera.kernels.Backend;
import dev.tessera.models.arch.LlamaWeights;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.offload.HeadPlan;
import dev.tessera.offload.OffloadClient;
import dev.tessera.offload.WireFormat;
import dev.tessera.scheduler.offload.AttentionOffloadRunner;
import dev.tessera.scheduler.parallel.TensorParallelWorker;
import dev.tessera.scheduler.parallel.TpProtocol;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * The compute-node options of {@code serve}, {@code generate} and {@code bench} for attention offloading (Lamina):
 * {@code --attention-workers}, {@code --attention-weights}, {@code --offload-wire}, {@code --offload-micro-batches}.
 */
final class AttentionOffloadOptions {
    static final Set<String> OPTIONS = Set.of("attention-workers", "attention-weights", "offload-wire", "offload-micro-batches", "offload-timeout");

    static final String USAGE = "\n" + """
              --attention-workers H:P,...  attention offloading: KV cache and attention on these memory nodes
                                       ('tessera attention-worker'); weights, projections and FFN stay here
              --attention-weights 1,2  relative share of KV heads per memory node (default: equal)
              --offload-wire f16|f32   element type of q/k/v and attention rows on the wire (default f16)
              --offload-micro-batches 1|2  2 (default) overlaps one micro-batch's dense work with the other's
                                       remote attention; 1 runs a step as one batch
              --offload-timeout SEC    a memory node that has not answered by then is failed (default 60)""".indent(2).stripTrailing();

    private AttentionOffloadOptions() {}

    static AttentionOffloadRunner open(CliArgs args, GgufFile file, ModelConfig config, String modelName, int threads, int maxBatchTokens, int maxLogitRows) {
        if (args.has("tp-workers")) throw new CliArgs.UsageException("--attention-workers and --tp-workers cannot be combined in this build");
        List<InetSocketAddress> nodes = new ArrayList<>();
        for (String s : args.require("attention-workers").split(",")) {
            try {
                nodes.add(TensorParallelWorker.parseAddress(s.trim()));
            } catch (TpProtocol.ProtocolException e) {
                throw new CliArgs.UsageException("--attention-workers: " + e.getMessage());
            }
        }
        int[] weights;
        WireFormat wire;
        try {
            weights = args.has("attention-weights") ? HeadPlan.parseWeights(args.get("attention-weights", "")) : ones(nodes.size());
            HeadPlan.split(config.numHeads(), config.numKvHeads(), weights);
            wire = WireFormat.parse(args.get("offload-wire", "f16"));
        } catch (IllegalArgumentException e) {
            throw new CliArgs.UsageException(e.getMessage());
        }
        if (weights.length != nodes.size())
            throw new CliArgs.UsageException("--attention-weights has " + weights.length + " entries for " + nodes.size() + " memory nodes");
        int lanes = args.getInt("offload-micro-batches", 2, 1, 2);
        int timeout = args.getInt("offload-timeout", 60, 1, 3600);
        Backend backend = Devices.backend(args, threads);
        OffloadClient client = null;
        try {
            LlamaWeights w = LlamaWeights.load(file, config, backend);
            client = new OffloadClient(modelName, config, nodes, weights, wire, maxBatchTokens, lanes, Duration.ofSeconds(timeout));
            return new AttentionOffloadRunner(config, w, backend, client, lanes, maxBatchTokens, maxLogitRows);
        } catch (RuntimeException e) {
            if (client != null) client.close();
            backend.close();
            throw e;
        }
    }

    private static int[] ones(int n) {
        int[] w = new int[n];
        Arrays.fill(w, 1);
        return w;
    }
}
