import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Load generator for scripts/serve-load.sh: REQUESTS non-streamed completions, CONCURRENCY at a time, against one
 * server on this machine; prints requests/s and p50/p99 latency. Run as a source file:
 * {@code java scripts/ServeLoad.java URL MODEL REQUESTS CONCURRENCY MAX_TOKENS}.
 */
public class ServeLoad {
    public static void main(String[] args) throws Exception {
        String url = args[0], model = args[1];
        int requests = Integer.parseInt(args[2]), concurrency = Integer.parseInt(args[3]), maxTokens = Integer.parseInt(args[4]);
        HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        String body = "{\"model\":\"" + model + "\",\"prompt\":\"Once upon a time\",\"max_tokens\":" + maxTokens + ",\"temperature\":0}";
        HttpRequest request = HttpRequest.newBuilder(URI.create(url + "/v1/completions")).timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build();
        for (int i = 0; i < 32; i++) client.send(request, HttpResponse.BodyHandlers.ofString()); // warm-up: JIT
        List<Long> latencies = Collections.synchronizedList(new ArrayList<>());
        AtomicInteger next = new AtomicInteger(), failed = new AtomicInteger();
        long t0 = System.nanoTime();
        try (ExecutorService pool = Executors.newFixedThreadPool(concurrency)) {
            List<Future<?>> workers = new ArrayList<>();
            for (int w = 0; w < concurrency; w++) {
                workers.add(pool.submit(() -> {
                    while (next.getAndIncrement() < requests) {
                        long s = System.nanoTime();
                        try {
                            HttpResponse<String> res = client.send(request, HttpResponse.BodyHandlers.ofString());
                            if (res.statusCode() == 200) latencies.add(System.nanoTime() - s);
                            else failed.incrementAndGet();
                        } catch (Exception e) {
                            failed.incrementAndGet();
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : workers) f.get();
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        List<Long> sorted = new ArrayList<>(latencies);
        Collections.sort(sorted);
        int n = sorted.size();
        System.out.printf("concurrency %d: %d ok, %d failed, %.1f requests/s, p50 %.1f ms, p99 %.1f ms (%d-token completions)%n",
                concurrency, n, failed.get(), n / seconds, sorted.get((int) ((n - 1) * 0.50)) / 1e6,
                sorted.get((int) ((n - 1) * 0.99)) / 1e6, maxTokens);
    }
}
