package dev.tessera.serving;

import dev.tessera.serving.cli.Main;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Real {@code tessera} processes for tests (workers, memory nodes) on the test classpath, and ports for them. */
public final class CliProcesses {
    private CliProcesses() {}

    /** Starts {@code tessera ARGS...} and returns once its log shows {@code readyText}; its log is drained after. */
    public static Process start(String readyText, String... args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx256m",
                "-cp", System.getProperty("java.class.path"), Main.class.getName()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        for (String line; (line = out.readLine()) != null; ) {
            if (line.contains(readyText)) {
                Thread.ofVirtual().start(() -> out.lines().forEach(l -> { }));  // keep draining its log
                return p;
            }
            if (System.nanoTime() > deadline) break;
        }
        p.destroyForcibly();
        throw new AssertionError("'tessera " + String.join(" ", args) + "' did not print '" + readyText + "'");
    }

    /**
     * A port free now and below Linux's ephemeral range: the process binds it a second later, and the test's own port-0
     * listeners, opened meanwhile, must not take it.
     */
    public static int freePortOutsideEphemeralRange() throws IOException {
        java.util.SplittableRandom random = new java.util.SplittableRandom();
        for (int attempt = 0; attempt < 100; attempt++) {
            int port = 20_000 + random.nextInt(12_000);
            try (ServerSocket probe = new ServerSocket()) {
                probe.bind(new InetSocketAddress("127.0.0.1", port));
                return port;
            } catch (java.net.BindException busy) {
                // taken: try another
            }
        }
        throw new IOException("no free port in 20000-31999");
    }
}
