package dev.tessera.serving.cli;

import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.scheduler.parallel.ShardPlan;
import dev.tessera.scheduler.parallel.ShardWriter;
import dev.tessera.scheduler.parallel.TensorParallelRunner;

import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/** {@code tessera shard}: writes one shard file per device for tensor-parallel runs. */
public final class ShardCommand implements Command {
    @Override public String name() { return "shard"; }

    @Override public String summary() { return "split a model into tensor-parallel shard files"; }

    @Override
    public String usage() {
        return """
                usage: tessera shard --model PATH --tp-weights 1,1,2 --out-dir DIR

                Writes DIR/<model>.tp<weights>.rank<r>.gguf for every device r (rank 0 is the master, which reads its
                share from the model itself). Each holds whole KV-head groups and FFN columns in proportion to the
                weights, and the source model's fingerprint, which workers check when a master connects.
                Prints the written paths on stdout.

                  --model PATH             GGUF model file (required)
                  --tp-weights W,W,...     relative device speeds, master first (required)
                  --out-dir DIR            output directory, created if missing (required)""";
    }

    @Override
    public int run(List<String> argList) {
        CliArgs args = new CliArgs(argList, Set.of("model", "tp-weights", "out-dir"), Set.of());
        Path model = Path.of(args.require("model"));
        Path out = Path.of(args.require("out-dir"));
        int[] weights;
        try {
            weights = ShardPlan.parseWeights(args.require("tp-weights"));
        } catch (IllegalArgumentException e) {
            throw new CliArgs.UsageException(e.getMessage());
        }
        try (GgufFile file = GgufFile.open(model)) {
            ModelConfig config = ModelConfig.fromGguf(file);
            ShardPlan plan;
            try {
                plan = TensorParallelRunner.plan(file, config, weights);
            } catch (IllegalArgumentException e) {
                throw new CliArgs.UsageException(e.getMessage());
            }
            System.err.println("tessera shard: " + plan);
            for (Path p : ShardWriter.writeAll(file, config, plan, out, System.err)) System.out.println(p);
        }
        return 0;
    }
}
