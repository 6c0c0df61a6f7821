package dev.tessera.serving.cli;

import dev.tessera.kernels.collective.AllReduce;
import dev.tessera.kernels.collective.AllReduceKind;
import dev.tessera.kernels.collective.CollectiveGroup;
import dev.tessera.kernels.collective.LinkEmulator;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.Writer;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * {@code tessera bench-allreduce}: star versus ring allreduce latency across real processes. This process is rank 0;
 * ranks 1..N-1 are worker JVMs started from the same class path ({@link #main} is their entry point). Every link
 * (worker↔rank 0 for star, rank r→r+1 for ring) goes through its own {@link LinkEmulator} in this process, so each hop
 * sees the configured delay and rate in each direction. Links are independent: rank 0's star links do not share one
 * rate budget, as with one switch port per device.
 *
 * <p>Latency is measured on rank 0 over back-to-back allreduces: an iteration cannot finish on rank 0 before the
 * previous result reached every worker and their next parts came back, so it spans the whole operation.
 */
public final class AllReduceBenchCommand implements Command {
    private static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();

    @Override
    public String name() {
        return "bench-allreduce";
    }

    @Override
    public String summary() {
        return "allreduce latency, star vs ring, across worker processes over emulated links";
    }

    @Override
    public String usage() {
        return """
                usage: tessera bench-allreduce [--devices 4] [--bytes 262144] [--algorithm star|ring|both]
                                               [--delay 1ms] [--rate 300mbit] [--iterations 30] [--warmup 5]
                                               [--timeout-ms 30000] [--no-header]

                Starts --devices - 1 worker JVMs, routes every link through a link emulator (--delay one way, --rate
                per direction; 0 = none) and times --iterations allreduces of --bytes (float32) after --warmup.
                Prints one row per algorithm: devices, algorithm, bytes, delay, rate, median and p90 latency in ms.""";
    }

    @Override
    public int run(List<String> args) throws Exception {
        CliArgs a = new CliArgs(args, Set.of("devices", "bytes", "algorithm", "delay", "rate", "iterations", "warmup", "timeout-ms"),
                Set.of("no-header"));
        int devices = a.getInt("devices", 4, 1, 64);
        int bytes = a.getInt("bytes", 262144, 4, 1 << 30);
        if (bytes % Float.BYTES != 0) throw new CliArgs.UsageException("--bytes must be a multiple of 4, got " + bytes);
        int iterations = a.getInt("iterations", 30, 1, 1_000_000);
        int warmup = a.getInt("warmup", 5, 0, 1_000_000);
        int timeoutMillis = a.getInt("timeout-ms", 30_000, 100, Integer.MAX_VALUE);
        String delayText = a.get("delay", "1ms");
        String rateText = a.get("rate", "300mbit");
        Duration delay;
        long rate;
        List<AllReduceKind> kinds;
        try {
            delay = LinkEmulator.parseDelay(delayText);
            rate = LinkEmulator.parseRate(rateText);
            String algorithm = a.get("algorithm", "both");
            kinds = algorithm.equals("both") ? List.of(AllReduceKind.STAR, AllReduceKind.RING) : List.of(AllReduceKind.parse(algorithm));
        } catch (IllegalArgumentException e) {
            throw new CliArgs.UsageException(e.getMessage());
        }
        PrintStream out = System.out;
        if (!a.has("no-header")) out.printf("%-8s %-9s %-8s %-6s %-9s %10s %10s%n", "devices", "algorithm", "bytes", "delay", "rate", "median_ms", "p90_ms");
        for (AllReduceKind kind : kinds) {
            double[] millis = measure(kind, devices, bytes / Float.BYTES, warmup, iterations, delay, rate, timeoutMillis);
            Arrays.sort(millis);
            out.printf("%-8d %-9s %-8d %-6s %-9s %10.2f %10.2f%n", devices, kind.flagName(), bytes, delayText, rateText,
                    percentile(millis, 0.5), percentile(millis, 0.9));
            out.flush();
        }
        return 0;
    }

    static double percentile(double[] sorted, double p) {
        int index = (int) Math.ceil(p * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, index))];
    }

    /** Runs one group of {@code devices} ranks; returns rank 0's per-iteration latencies in ms. */
    private static double[] measure(AllReduceKind kind, int devices, int floats, int warmup, int iterations,
                                    Duration delay, long rate, int timeoutMillis) throws Exception {
        List<Process> workers = new ArrayList<>();
        List<BufferedReader> workerOut = new ArrayList<>();
        List<LinkEmulator> links = new ArrayList<>();
        try {
            String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            for (int r = 1; r < devices; r++) {
                Process p = new ProcessBuilder(java, "-XX:+UseSerialGC", "-Xmx512m", "-cp", System.getProperty("java.class.path"),
                        AllReduceBenchCommand.class.getName(), kind.flagName(), String.valueOf(r), String.valueOf(devices),
                        String.valueOf(floats), String.valueOf(warmup + iterations), String.valueOf(timeoutMillis))
                        .redirectError(ProcessBuilder.Redirect.INHERIT).start();
                workers.add(p);
                workerOut.add(new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8)));
            }
            ServerSocket listener = CollectiveGroup.listen(new InetSocketAddress(LOOPBACK, 0));
            int[] listenPorts = new int[devices];
            listenPorts[0] = listener.getLocalPort();
            for (int r = 1; r < devices; r++) listenPorts[r] = Integer.parseInt(expectLine(workerOut.get(r - 1), "LISTEN ", r));
            // addresses[r][p]: where rank r reaches rank p, through an emulator for every link it uses.
            InetSocketAddress[][] addresses = new InetSocketAddress[devices][devices];
            for (InetSocketAddress[] row : addresses) Arrays.fill(row, new InetSocketAddress(LOOPBACK, 0));
            for (int r = 0; r < devices; r++) {
                int peer = kind == AllReduceKind.STAR ? 0 : (r + 1) % devices;
                if (r == peer || devices == 1) continue;
                LinkEmulator link = new LinkEmulator(new InetSocketAddress(LOOPBACK, 0), new InetSocketAddress(LOOPBACK, listenPorts[peer]), delay, rate);
                links.add(link);
                addresses[r][peer] = link.address();
            }
            for (int r = 1; r < devices; r++) {
                Writer w = new java.io.OutputStreamWriter(workers.get(r - 1).getOutputStream(), StandardCharsets.UTF_8);
                w.write(join(addresses[r]) + "\n");
                w.flush();
            }
            double[] millis = new double[iterations];
            try (AllReduce group = CollectiveGroup.open(kind, 0, List.of(addresses[0]),
                    CollectiveGroup.needsListener(kind, 0, devices) ? listener : null, Duration.ofMillis(timeoutMillis))) {
                if (!CollectiveGroup.needsListener(kind, 0, devices)) listener.close();
                float[] data = new float[floats];
                for (int i = 0; i < warmup + iterations; i++) {
                    fill(data, 0);
                    long start = System.nanoTime();
                    group.sum(data, 0, floats);
                    long nanos = System.nanoTime() - start;
                    check(data, devices, 0);
                    if (i >= warmup) millis[i - warmup] = nanos / 1e6;
                }
            }
            for (int r = 1; r < devices; r++) {
                expectLine(workerOut.get(r - 1), "OK", r);
                Process p = workers.get(r - 1);
                if (!p.waitFor(timeoutMillis, TimeUnit.MILLISECONDS) || p.exitValue() != 0) {
                    throw new IllegalStateException("allreduce worker rank " + r + " did not exit cleanly");
                }
            }
            return millis;
        } finally {
            for (LinkEmulator link : links) link.close();
            for (Process p : workers) p.destroyForcibly();
        }
    }

    private static String expectLine(BufferedReader in, String prefix, int rank) throws Exception {
        String line = in.readLine();
        if (line == null || !line.startsWith(prefix)) {
            throw new IllegalStateException("allreduce worker rank " + rank + " said '" + line + "', expected '" + prefix + "...'");
        }
        return line.substring(prefix.length()).trim();
    }

    private static String join(InetSocketAddress[] addresses) {
        StringBuilder sb = new StringBuilder();
        for (InetSocketAddress a : addresses) sb.append(sb.isEmpty() ? "" : ",").append(a.getPort());
        return sb.toString();
    }

    /** Rank r's part: small integers, so every summation order gives the exact same sum. */
    private static void fill(float[] data, int rank) {
        for (int i = 0; i < data.length; i++) data[i] = (i % 7) + rank;
    }

    private static void check(float[] data, int devices, int rank) {
        float rankSum = devices * (devices - 1) / 2f;
        for (int i = 0; i < data.length; i += 97) {
            float expected = devices * (i % 7) + rankSum;
            if (data[i] != expected) {
                throw new IllegalStateException("rank " + rank + ": allreduce gave " + data[i] + " at " + i + ", expected " + expected);
            }
        }
    }

    /**
     * A worker rank: {@code kind rank size floats iterations timeoutMillis}. Prints {@code LISTEN port}, reads the
     * comma-separated loopback ports it reaches each rank at, runs the allreduces, checks them, prints {@code OK}.
     */
    public static void main(String[] argv) {
        try {
            AllReduceKind kind = AllReduceKind.parse(argv[0]);
            int rank = Integer.parseInt(argv[1]);
            int size = Integer.parseInt(argv[2]);
            int floats = Integer.parseInt(argv[3]);
            int iterations = Integer.parseInt(argv[4]);
            Duration timeout = Duration.ofMillis(Long.parseLong(argv[5]));
            ServerSocket listener = CollectiveGroup.needsListener(kind, rank, size)
                    ? CollectiveGroup.listen(new InetSocketAddress(LOOPBACK, 0)) : null;
            System.out.println("LISTEN " + (listener == null ? 0 : listener.getLocalPort()));
            System.out.flush();
            String line = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)).readLine();
            if (line == null) throw new IllegalStateException("no addresses on stdin");
            List<InetSocketAddress> addresses = Arrays.stream(line.trim().split(","))
                    .map(p -> new InetSocketAddress(LOOPBACK, Integer.parseInt(p))).toList();
            try (AllReduce group = CollectiveGroup.open(kind, rank, addresses, listener, timeout)) {
                float[] data = new float[floats];
                for (int i = 0; i < iterations; i++) {
                    fill(data, rank);
                    group.sum(data, 0, floats);
                    check(data, size, rank);
                }
            }
            System.out.println("OK");
            System.out.flush();
            System.exit(0);
        } catch (Exception e) {
            System.err.println("allreduce worker: " + e.getMessage());
            System.exit(1);
        }
    }
}
