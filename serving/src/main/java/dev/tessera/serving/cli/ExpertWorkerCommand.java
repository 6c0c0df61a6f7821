package dev.tessera.serving.cli;

import dev.tessera.kernels.cpu.CpuTopology;
import dev.tessera.scheduler.expert.ExpertParallelWorker;
import dev.tessera.scheduler.parallel.TensorParallelWorker;
import dev.tessera.scheduler.parallel.TpProtocol;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;

/** {@code tessera expert-worker}: one device of expert-parallel inference, holding its share of a MoE model's experts. */
public final class ExpertWorkerCommand implements Command {
    @Override public String name() { return "expert-worker"; }

    @Override public String summary() { return "hold a share of a MoE model's experts for 'serve|generate|bench --expert-workers'"; }

    @Override
    public String usage() {
        return """
                usage: tessera expert-worker --listen HOST:PORT --model PATH [--device cpu|cuda[:N]] [--threads N]

                A device of expert parallelism (ExFlow): the master ('tessera serve --expert-workers ...') runs the engine
                and sends every step here; this process holds the same model file, loads the experts the master's
                placement gives it (and the rest of the model) and runs each step in lockstep with the other devices.
                One master at a time; a new master (or a restarted one) simply reconnects. Logs to stderr.

                  --listen HOST:PORT       address the master connects to (required)
                  --model PATH             the master's GGUF file, the same bytes (required; checked at connect time)
                  --device auto|cpu|cuda[:N]  where this device computes (default cpu)
                  --threads N              CPU threads (default: physical cores)""";
    }

    @Override
    public int run(List<String> argList) {
        CliArgs args = new CliArgs(argList, Set.of("listen", "model", "device", "threads"), Set.of());
        InetSocketAddress listen;
        try {
            listen = TensorParallelWorker.parseAddress(args.require("listen"));
        } catch (TpProtocol.ProtocolException e) {
            throw new CliArgs.UsageException("--listen: " + e.getMessage());
        }
        Path model = Path.of(args.require("model"));
        int threads = args.getInt("threads", CpuTopology.physicalCores(), 1, 1024);
        List<String> deviceArgs = List.of("--device", args.get("device", "cpu"));
        CliArgs device = new CliArgs(deviceArgs, Set.of("device"), Set.of());
        try (ExpertParallelWorker worker = new ExpertParallelWorker(listen, model, i -> Devices.backend(device, threads), Duration.ofSeconds(60), System.err)) {
            System.err.printf("expert-worker: listening on %s:%d%n", listen.getHostString(), worker.port());
            worker.serve();
        } catch (IllegalArgumentException e) {
            throw new CliArgs.UsageException(e.getMessage());
        }
        return 0;
    }
}
