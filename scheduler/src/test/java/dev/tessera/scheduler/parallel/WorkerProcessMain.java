package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.kernels.cuda.CudaBackend;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;

/**
 * A worker process for tests: {@code PORT SHARD_DIR WINDOW [receive|refuse [cpu|cuda:N]]}; prints "listening PORT" once
 * it accepts masters.
 */
public final class WorkerProcessMain {
    public static void main(String[] args) {
        int port = Integer.parseInt(args[0]);
        try (TensorParallelWorker worker = new TensorParallelWorker(new InetSocketAddress("127.0.0.1", port), Path.of(args[1]),
                Integer.parseInt(args[2]), unused -> backend(args.length > 4 ? args[4] : "cpu"), Duration.ofSeconds(20), System.err,
                args.length > 3 && args[3].equals("receive"))) {
            System.out.println("listening " + worker.port());
            System.out.flush();
            worker.serve();
        }
    }

    private static Backend backend(String device) {
        return device.startsWith("cuda:") ? new CudaBackend(Integer.parseInt(device.substring(5))) : new CpuBackend(1);
    }
}
