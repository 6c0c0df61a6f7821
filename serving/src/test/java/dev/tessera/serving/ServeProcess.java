package dev.tessera.serving;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code tessera serve} as a real child process on a free port, serving {@code ../shared/models/stories260K.gguf}:
 * the same main class the launcher runs, on this test's class path. Waits for {@code /ready}; {@link #close()}
 * stops it the way Ctrl-C does.
 */
public final class ServeProcess implements AutoCloseable {
    public static final Path MODELS = Path.of(System.getProperty("tessera.models", "../../shared/models"));
    public static final Path MODEL = MODELS.resolve("stories260K.gguf");
    public static final String MODEL_NAME = "stories260K";
    private static final Pattern LISTENING = Pattern.compile("listening on (http://[^\\s]+:\\d+)");

    private final Process process;
    private final StringBuffer log;
    private final String baseUrl;
    private final String apiKey;

    private ServeProcess(Process process, StringBuffer log, String baseUrl, String apiKey) {
        this.process = process;
        this.log = log;
        this.baseUrl = baseUrl;
        this.apiKey = apiKey;
    }

    /** Starts the server with {@code --api-key apiKey} (null for none) and the extra flags. */
    public static ServeProcess start(String apiKey, String... extraFlags) throws IOException, InterruptedException {
        if (!MODEL.toFile().isFile()) throw new IllegalStateException("test model missing: " + MODEL.toAbsolutePath());
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(java, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-Xmx1g", "-cp", System.getProperty("java.class.path"), "dev.tessera.serving.cli.Main", "serve",
                "--model", MODEL.toString(), "--host", "127.0.0.1", "--port", "0", "--threads", "1", "--device", "cpu"));
        if (apiKey != null) cmd.addAll(List.of("--api-key", apiKey));
        cmd.addAll(List.of(extraFlags));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().remove("TESSERA_API_KEY");
        Process p = pb.start();
        StringBuffer log = new StringBuffer();
        CompletableFuture<String> url = new CompletableFuture<>();
        Thread reader = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    log.append(line).append('\n');
                    Matcher m = LISTENING.matcher(line);
                    if (m.find()) url.complete(m.group(1));
                }
            } catch (IOException ignored) {
                // the process ended
            }
            url.completeExceptionally(new IllegalStateException("tessera serve exited before listening:\n" + log));
        }, "tessera-serve-log");
        reader.setDaemon(true);
        reader.start();
        String base;
        try {
            base = url.get(60, TimeUnit.SECONDS);
        } catch (Exception e) {
            p.destroyForcibly();
            throw new IllegalStateException("tessera serve did not print 'listening on' within 60 s: " + e.getMessage() + "\n" + log, e);
        }
        ServeProcess server = new ServeProcess(p, log, base, apiKey);
        server.awaitReady(Duration.ofSeconds(60));
        return server;
    }

    private void awaitReady(Duration timeout) throws InterruptedException {
        HttpClient http = HttpClient.newHttpClient();
        long deadline = System.nanoTime() + timeout.toNanos();
        int last = -1;
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) throw new IllegalStateException("tessera serve exited with " + process.exitValue() + ":\n" + log());
            try {
                last = http.send(HttpRequest.newBuilder(URI.create(baseUrl + "/ready")).build(), HttpResponse.BodyHandlers.discarding())
                        .statusCode();
                if (last == 200) return;
            } catch (IOException e) {
                // not accepting yet
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("/ready still " + last + " after " + timeout + ":\n" + log());
    }

    /** {@code http://127.0.0.1:PORT}, no trailing slash. */
    public String baseUrl() {
        return baseUrl;
    }

    public String apiKey() {
        return apiKey;
    }

    public int port() {
        return URI.create(baseUrl).getPort();
    }

    /** The server's process id (for signals and resource limits in tests). */
    public long pid() {
        return process.pid();
    }

    /** Waits for the process to end by itself; its exit code, or -1 if it still runs after the time. */
    public int waitForExit(long millis) throws InterruptedException {
        return process.waitFor(millis, TimeUnit.MILLISECONDS) ? process.exitValue() : -1;
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** What the server printed so far (its request log and errors). */
    public String log() {
        return log.toString();
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(20, TimeUnit.SECONDS)) process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
    }
}
