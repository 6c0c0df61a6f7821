package dev.tessera.tools.gpucheck;

import dev.tessera.kernels.TensorType;
import dev.tessera.models.synth.SynthPreset;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

import static dev.tessera.tools.gpucheck.CheckReport.log;

/**
 * Lamina's economics on the device: the GPU's memory for weights, host RAM for KV. {@code tessera serve} on the GPU
 * with a small KV budget, then the same server offloading attention to two {@code tessera attention-worker} processes
 * on the host's CPUs; each at the most concurrent long sequences its KV pool holds, through {@code tessera bench serve}.
 */
final class OffloadSection extends CheckSection {
    private static final int SEQ_TOKENS = 1024, GEN_TOKENS = 32;

    OffloadSection(CheckSetup setup, CheckReport report) {
        super(setup, report);
    }

    @Override
    String name() {
        return "offload";
    }

    @Override
    void run() throws IOException, InterruptedException {
        Path home = Path.of(System.getProperty("tessera.home", "."));
        Path launcher = home.resolve("tessera");
        if (!Files.isExecutable(launcher)) throw new IllegalStateException(launcher + " not found (run from the bundle or a checkout)");
        Path model = synth(quick ? SynthPreset.TINY : SynthPreset.LLAMA_1B, TensorType.Q4_0);
        String where = cpuOnly ? "cpu" : device;
        String gpuKv = quick ? "16MiB" : "256MiB", nodeKv = quick ? "64MiB" : "1GiB";
        int nodeThreads = Math.max(1, numThreads / 3);
        serveAtCapacity(launcher, model, "GPU alone, --kv-cache-memory " + gpuKv, List.of("--device", where, "--kv-cache-memory", gpuKv));
        List<Process> nodes = new ArrayList<>();
        try {
            StringBuilder list = new StringBuilder();
            for (int i = 0; i < 2; i++) {
                int port = freePort();
                Process p = new ProcessBuilder(launcher.toString(), "attention-worker", "--listen", "127.0.0.1:" + port, "--kv-cache-memory", nodeKv,
                        "--threads", Integer.toString(nodeThreads), "--device", "cpu").redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
                nodes.add(p);
                awaitLine(p, "attention-worker: listening on");
                list.append(i == 0 ? "" : ",").append("127.0.0.1:").append(port);
            }
            serveAtCapacity(launcher, model, "GPU + 2 CPU memory nodes (" + nodeKv + ", " + nodeThreads + " threads each)",
                    List.of("--device", where, "--attention-workers", list.toString()));
        } finally {
            for (Process p : nodes) p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }

    private void serveAtCapacity(Path launcher, Path model, String label, List<String> flags) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(launcher.toString(), "serve", "--model", model.toString(), "--served-model-name", "m",
                "--host", "127.0.0.1", "--port", "0", "--max-num-seqs", "64", "--max-num-batched-tokens", "2048"));
        cmd.addAll(flags);
        Process server = new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        try {
            String url = ServeSection.awaitListening(server);
            HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(300);
            while (ServeSection.status(http, url + "/ready") != 200) {
                if (System.nanoTime() > deadline || !server.isAlive()) throw new IllegalStateException("server at " + url + " never became ready");
                Thread.sleep(200);
            }
            int blocks = (int) metric(http, url, "tessera_kv_cache_blocks");
            int seqs = Math.max(1, Math.min(64, blocks / (SEQ_TOKENS / 16)));
            Process p = new ProcessBuilder(launcher.toString(), "bench", "serve", "--url", url, "--model", "m", "--concurrency", Integer.toString(seqs),
                    "--requests", Integer.toString(seqs), "--prompt-tokens", Integer.toString(SEQ_TOKENS - GEN_TOKENS - 16),
                    "--gen-tokens", Integer.toString(GEN_TOKENS), "--timeout", "600", "--json").redirectError(ProcessBuilder.Redirect.DISCARD).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(600, TimeUnit.SECONDS)) { p.destroyForcibly(); throw new IllegalStateException("bench serve ran past 600 s"); }
            log("offload: %s: %s", label, out.strip());
            double wait = metric(http, url, "tessera_offload_network_wait_ratio"), preempted = metric(http, url, "tessera_num_preemptions_total");
            double failed = ServeSection.field(out, "failed");
            report.row(name(), label, String.format(Locale.ROOT, "%d concurrent %d-token sequences, %.1f output tok/s, TTFT p50 %.0f ms, ITL p50 %.1f ms%s, %d preempted, %d failed",
                    seqs, SEQ_TOKENS, ServeSection.field(out, "output_throughput"), ServeSection.field(out, "p50_ttft_ms"), ServeSection.field(out, "p50_itl_ms"),
                    Double.isNaN(wait) ? "" : String.format(Locale.ROOT, ", waiting on the network %.0f%% of step time", 100 * wait),
                    (long) preempted, (long) failed), failed == 0 && p.exitValue() == 0 ? "ok" : "FAIL");
        } finally {
            server.destroy();
            if (!server.waitFor(40, TimeUnit.SECONDS)) server.destroyForcibly();
        }
    }

    private static double metric(HttpClient http, String url, String name) throws IOException, InterruptedException {
        String body = http.send(HttpRequest.newBuilder(URI.create(url + "/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
        for (String line : body.split("\n")) if (line.startsWith(name + " ")) return Double.parseDouble(line.substring(name.length() + 1).trim());
        return Double.NaN;
    }

    private static void awaitLine(Process p, String what) throws IOException {
        BufferedReader err = new BufferedReader(new InputStreamReader(p.getErrorStream(), StandardCharsets.UTF_8));
        for (String line; (line = err.readLine()) != null; ) {
            if (line.contains(what)) {
                Thread.ofVirtual().start(() -> {
                    try {
                        err.lines().forEach(l -> { });  // keep draining its log
                    } catch (java.io.UncheckedIOException closed) {
                        // the node was stopped
                    }
                });
                return;
            }
        }
        throw new IllegalStateException("attention-worker exited before listening");
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
