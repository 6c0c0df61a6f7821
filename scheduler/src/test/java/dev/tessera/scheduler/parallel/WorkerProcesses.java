package dev.tessera.scheduler.parallel;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Real worker JVMs on loopback, started from the test classpath and killed by process handle. */
final class WorkerProcesses implements AutoCloseable {
    private final List<Process> processes = new ArrayList<>();
    private final List<Integer> ports = new ArrayList<>();
    private final Path shardDir;
    private final int window;
    private final boolean receiveShards;
    private final String device;

    WorkerProcesses(Path shardDir, int window) {
        this(shardDir, window, false);
    }

    /** @param receiveShards workers ask the master for a missing shard instead of refusing */
    WorkerProcesses(Path shardDir, int window, boolean receiveShards) {
        this(shardDir, window, receiveShards, "cpu");
    }

    /** @param device where the workers compute: cpu, or cuda:N */
    WorkerProcesses(Path shardDir, int window, boolean receiveShards, String device) {
        this.shardDir = shardDir;
        this.window = window;
        this.receiveShards = receiveShards;
        this.device = device;
    }

    /** Starts a worker on port (0 = any) and waits until it listens; returns its index. */
    int start(int port) throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(java, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-Xmx256m", "-XX:+UseSerialGC",
                "-cp", System.getProperty("java.class.path"), WorkerProcessMain.class.getName(),
                Integer.toString(port), shardDir.toString(), Integer.toString(window), receiveShards ? "receive" : "refuse", device)
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream()));
        String line = out.readLine();
        if (line == null || !line.startsWith("listening ")) {
            p.destroyForcibly();
            throw new IOException("worker process did not start: " + line);
        }
        processes.add(p);
        ports.add(Integer.parseInt(line.substring("listening ".length()).trim()));
        return processes.size() - 1;
    }

    InetSocketAddress address(int index) {
        return new InetSocketAddress("127.0.0.1", ports.get(index));
    }

    List<InetSocketAddress> addresses(int count) {
        List<InetSocketAddress> out = new ArrayList<>();
        for (int i = 0; i < count; i++) out.add(address(i));
        return out;
    }

    /** SIGKILL, as a crash or power loss would. */
    void kill(int index) throws InterruptedException {
        Process p = processes.get(index);
        p.destroyForcibly();
        p.waitFor(10, TimeUnit.SECONDS);
    }

    /** Starts the worker again on its old port. */
    void restart(int index) throws IOException {
        int port = ports.get(index);
        start(port);
        processes.set(index, processes.removeLast());
        ports.set(index, ports.removeLast());
    }

    @Override
    public void close() throws InterruptedException {
        for (Process p : processes) p.destroyForcibly();
        for (Process p : processes) p.waitFor(10, TimeUnit.SECONDS);
    }
}
