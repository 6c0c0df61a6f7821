package dev.tessera.serving;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.serving.cli.Main;
import dev.tessera.serving.http.Json;
import io.helidon.webserver.WebServer;

import java.io.IOException;
import java.io.PrintStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/** A real server on port 0 built from {@link Main#routing}, optionally with stories260K loaded. For tests. */
public final class TestServer implements AutoCloseable {
    public static final String MODEL_NAME = "stories260K";

    public final ServingContext context;
    public final WebServer server;
    public final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();

    private TestServer(ServingContext context, WebServer server) {
        this.context = context;
        this.server = server;
    }

    public static Path modelPath() {
        String dir = System.getProperty("tessera.models");
        if (dir == null) throw new IllegalStateException("system property tessera.models is not set");
        Path p = Path.of(dir, "stories260K.gguf");
        if (!Files.isRegularFile(p)) throw new IllegalStateException(p + " is missing");
        return p;
    }

    /** A server whose model is not loaded yet. */
    public static TestServer unloaded(ServingConfig config) {
        ServingContext context = new ServingContext(config);
        // Request log lines are not needed in test output.
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
        return new TestServer(context, Main.server("127.0.0.1", 0, context, quiet));
    }

    /** A server with stories260K loaded and a waiting queue of maxQueue. */
    public static TestServer loaded(ServingConfig config, int maxQueue) {
        return loaded(config, maxQueue, ServedModel.DEFAULT_MAX_NUM_SEQS);
    }

    /** With maxNumSeqs running at once (1: one request at a time). */
    public static TestServer loaded(ServingConfig config, int maxQueue, int maxNumSeqs) {
        TestServer s = unloaded(config);
        s.context.ready(ServedModel.load(modelPath(), config.servedModelName(), new CpuBackend(1), maxQueue, maxNumSeqs));
        return s;
    }

    public static TestServer loaded() {
        return loaded(new ServingConfig(MODEL_NAME, null, ServingConfig.DEFAULT_MAX_BODY_BYTES), 64);
    }

    /** A server with {@code model} loaded under the name stories260K (a copy of it with other metadata, say). */
    public static TestServer loaded(Path model) {
        TestServer s = unloaded(new ServingConfig(MODEL_NAME, null, ServingConfig.DEFAULT_MAX_BODY_BYTES));
        s.context.ready(ServedModel.load(model, MODEL_NAME, new CpuBackend(1), 64, ServedModel.DEFAULT_MAX_NUM_SEQS));
        return s;
    }

    public void load(int maxQueue) {
        context.ready(ServedModel.load(modelPath(), context.config().servedModelName(), new CpuBackend(1), maxQueue));
    }

    public URI uri(String path) {
        return URI.create("http://127.0.0.1:" + server.port() + path);
    }

    public HttpResponse<String> get(String path) throws IOException, InterruptedException {
        return client.send(HttpRequest.newBuilder(uri(path)).GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    public HttpResponse<String> post(String path, String json) throws IOException, InterruptedException {
        return client.send(HttpRequest.newBuilder(uri(path)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json)).build(), HttpResponse.BodyHandlers.ofString());
    }

    public static JsonNode json(HttpResponse<String> res) throws IOException {
        return Json.MAPPER.readTree(res.body());
    }

    /** The value of an unlabelled gauge or counter in /metrics, or NaN when absent. */
    public double metric(String name) throws IOException, InterruptedException {
        for (String line : get("/metrics").body().split("\n")) {
            if (line.startsWith(name + " ") || line.startsWith(name + "{")) {
                if (line.startsWith(name + "{") && !line.contains("} ")) continue;
                return Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
            }
        }
        return Double.NaN;
    }

    @Override
    public void close() {
        server.stop();
        ServedModel m = context.unload();
        if (m != null) m.close();
    }
}
