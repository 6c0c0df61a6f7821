package dev.tessera.tools.gpucheck;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static dev.tessera.tools.gpucheck.CheckReport.log;

/**
 * The server on the device: a real {@code tessera serve} process (HTTP edge, engine, CUDA) loaded by
 * {@code tessera bench serve} at concurrency 1, 8 and 32, then one {@code /metrics} scrape.
 */
final class ServeSection extends CheckSection {
    private static final Pattern LISTENING = Pattern.compile("listening on (http://[0-9.]+:[0-9]+)");

    ServeSection(CheckSetup setup, CheckReport report) {
        super(setup, report);
    }

    @Override
    String name() {
        return "serve";
    }

    @Override
    void run() throws IOException, InterruptedException {
        Path home = Path.of(System.getProperty("tessera.home", "."));
        Path launcher = home.resolve("tessera");
        if (!Files.isExecutable(launcher)) throw new IllegalStateException(launcher + " not found (run from the bundle or a checkout)");
        String model = modelsDir.resolve("stories260K.gguf").toString();
        Process server = new ProcessBuilder(launcher.toString(), "serve", "--model", model, "--host", "127.0.0.1", "--port", "0",
                "--device", cpuOnly ? "cpu" : device).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        try {
            String url = awaitListening(server);
            HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (status(http, url + "/ready") != 200) {
                if (System.nanoTime() > deadline || !server.isAlive()) throw new IllegalStateException("server at " + url + " never became ready");
                Thread.sleep(200);
            }
            for (int c : List.of(1, 8, 32)) bench(launcher, url, c);
            String metrics = http.send(HttpRequest.newBuilder(URI.create(url + "/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
            boolean ok = metrics.contains("tessera_time_to_first_token_seconds_bucket") && metrics.contains("tessera_requests_total");
            report.row(name(), "/metrics scrape", metrics.lines().filter(l -> l.startsWith("tessera_")).count() + " tessera_ samples", ok ? "ok" : "FAIL");
        } finally {
            server.destroy();
            if (!server.waitFor(40, TimeUnit.SECONDS)) server.destroyForcibly();
        }
    }

    static String awaitListening(Process server) throws IOException {
        BufferedReader err = new BufferedReader(new InputStreamReader(server.getErrorStream(), StandardCharsets.UTF_8));
        for (String line; (line = err.readLine()) != null; ) {
            Matcher m = LISTENING.matcher(line);
            if (m.find()) {
                Thread.ofVirtual().start(() -> err.lines().forEach(l -> { }));  // keep draining the request log
                return m.group(1);
            }
        }
        throw new IllegalStateException("tessera serve exited before listening");
    }

    static int status(HttpClient http, String url) {
        try {
            return http.send(HttpRequest.newBuilder(URI.create(url)).build(), HttpResponse.BodyHandlers.discarding()).statusCode();
        } catch (IOException | InterruptedException e) {
            return -1;
        }
    }

    private void bench(Path launcher, String url, int concurrency) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(launcher.toString(), "bench", "serve", "--url", url, "--model", "stories260K",
                "--concurrency", Integer.toString(concurrency), "--requests", Integer.toString(4 * concurrency),
                "--prompt-tokens", "32", "--gen-tokens", "64", "--json").redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(120, TimeUnit.SECONDS)) { p.destroyForcibly(); throw new IllegalStateException("bench serve ran past 120 s"); }
        log("serve: c%d %s", concurrency, out.strip());
        double tokS = field(out, "output_throughput"), ttft50 = field(out, "p50_ttft_ms"), ttft99 = field(out, "p99_ttft_ms"),
                itl99 = field(out, "p99_itl_ms"), failed = field(out, "failed");
        report.row(name(), "stories260K c" + concurrency + " (64 output tokens)", String.format(Locale.ROOT,
                "%.1f output tok/s, TTFT p50 %.1f p99 %.1f ms, ITL p99 %.2f ms, %d failed", tokS, ttft50, ttft99, itl99, (long) failed),
                failed == 0 && p.exitValue() == 0 ? "ok" : "FAIL");
    }

    static double field(String json, String key) {
        Matcher m = Pattern.compile("\"" + key + "\"\\s*:\\s*([0-9.eE+-]+)").matcher(json);
        return m.find() ? Double.parseDouble(m.group(1)) : Double.NaN;
    }
}
