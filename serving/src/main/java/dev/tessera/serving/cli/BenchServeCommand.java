package dev.tessera.serving.cli;

import dev.tessera.serving.cli.benchserve.BenchPrompts;
import dev.tessera.serving.cli.benchserve.LoadReport;
import dev.tessera.serving.cli.benchserve.StreamedCompletion;

import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * {@code tessera bench serve}: a load generator for any OpenAI-compatible server, like vLLM's benchmark_serving. It
 * uses only {@code POST /v1/completions} (streamed, greedy, with a usage chunk): C clients on virtual threads send N
 * requests in a closed loop, or with {@code --request-rate} requests arrive as a Poisson process, still at most C in
 * flight. Prompts are seeded word sequences sized from one probe request's token count (see {@link BenchPrompts}).
 */
public final class BenchServeCommand implements Command {
    static final String USAGE = """
            usage: tessera bench serve --url URL --model NAME [options]

              --url URL             server base URL, e.g. http://127.0.0.1:8000 (or the full /v1/completions URL)
              --model NAME          the model name to send
              --concurrency C       most requests in flight at once (default 1)
              --requests N          requests in total (default 64)
              --prompt-tokens P     about P prompt tokens per request (default 128)
              --gen-tokens G        max_tokens of each request (default 64)
              --shared-prefix K     every prompt starts with the same ~K tokens (K < P), then a distinct suffix
              --request-rate R      open loop: Poisson arrivals at R requests/s (default: closed loop, as fast as C allows)
              --api-key KEY         sent as 'Authorization: Bearer KEY'
              --seed S              seed of the prompts and arrival times (default 0)
              --timeout SECONDS     per-request limit from send to end of stream (default 120)
              --json                print one JSON object instead of a table
            Exit 0 when every request succeeded, 1 when any failed (the report is printed either way).""";

    @Override public String name() { return "bench serve"; }

    @Override public String summary() { return "load-test an OpenAI-compatible server"; }

    @Override public String usage() { return USAGE; }

    @Override
    public int run(List<String> args) throws Exception {
        return run(args, System.out, System.err);
    }

    /** Runs the benchmark; the report goes to out, progress to err. */
    public int run(List<String> argList, PrintStream out, PrintStream err) throws Exception {
        CliArgs args = new CliArgs(argList, Set.of("url", "model", "concurrency", "requests", "prompt-tokens", "gen-tokens",
                "shared-prefix", "request-rate", "api-key", "seed", "timeout"), Set.of("json"));
        URI endpoint = endpoint(args.require("url"));
        String model = args.require("model");
        int concurrency = args.getInt("concurrency", 1, 1, 4096);
        int numRequests = args.getInt("requests", 64, 1, 1 << 24);
        int promptTokens = args.getInt("prompt-tokens", 128, 1, 1 << 20);
        int genTokens = args.getInt("gen-tokens", 64, 1, 1 << 20);
        int sharedPrefix = args.getInt("shared-prefix", 0, 0, 1 << 20);
        if (sharedPrefix >= promptTokens && sharedPrefix > 0)
            throw new CliArgs.UsageException("--shared-prefix " + sharedPrefix + " must be below --prompt-tokens " + promptTokens);
        double requestRate = args.has("request-rate") ? args.getDouble("request-rate", 0, 1e-6, 1e9) : Double.POSITIVE_INFINITY;
        long seed = args.getLong("seed", 0);
        int timeoutSeconds = args.getInt("timeout", 120, 1, 86_400);
        String apiKey = args.get("api-key", null);

        try (ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor();
             HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).executor(threads)
                     .connectTimeout(Duration.ofSeconds(Math.min(timeoutSeconds, 30))).build()) {
            StreamedCompletion completion = new StreamedCompletion(client, endpoint, apiKey, Duration.ofSeconds(timeoutSeconds));
            double tokensPerWord = tokensPerWord(completion, model, seed, err);
            List<String> prompts = BenchPrompts.build(numRequests, promptTokens, sharedPrefix, tokensPerWord, seed);
            err.printf(Locale.ROOT, "tessera bench serve: %d requests to %s, concurrency %d, %s%n", numRequests, endpoint, concurrency,
                    Double.isInfinite(requestRate) ? "closed loop" : "Poisson arrivals at " + requestRate + " req/s");
            List<StreamedCompletion.Result> results = Collections.synchronizedList(new ArrayList<>(numRequests));
            long start = System.nanoTime();
            dispatch(threads, completion, model, prompts, genTokens, concurrency, requestRate, seed, results);
            double seconds = (System.nanoTime() - start) / 1e9;
            LoadReport report = new LoadReport(new LoadReport.Settings(endpoint.toString(), model, concurrency, numRequests, promptTokens,
                    genTokens, sharedPrefix, requestRate, seed, tokensPerWord), results, seconds);
            out.print(args.has("json") ? report.toJson() + System.lineSeparator() : report.toTable());
            out.flush();
            return report.numFailed() == 0 ? 0 : 1;
        }
    }

    /**
     * Starts every request on its own virtual thread once a permit of the C-permit semaphore is free (and, in open
     * loop, its arrival time has come), then waits for all of them.
     */
    private static void dispatch(ExecutorService threads, StreamedCompletion completion, String model, List<String> prompts, int genTokens,
                                 int concurrency, double requestRate, long seed, List<StreamedCompletion.Result> results) throws InterruptedException {
        Semaphore inFlight = new Semaphore(concurrency);
        SplittableRandom arrivals = new SplittableRandom(seed + 2);
        long next = System.nanoTime();
        for (String prompt : prompts) {
            if (!Double.isInfinite(requestRate)) {
                // Exponential gaps: a Poisson process of the given rate.
                next += (long) (-Math.log(1 - arrivals.nextDouble()) / requestRate * 1e9);
                long wait = next - System.nanoTime();
                if (wait > 0) TimeUnit.NANOSECONDS.sleep(wait);
            }
            inFlight.acquire();
            threads.submit(() -> {
                try {
                    results.add(completion.send(model, prompt, genTokens));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } finally {
                    inFlight.release();
                }
            });
        }
        inFlight.acquire(concurrency);
        inFlight.release(concurrency);
    }

    /**
     * Tokens per word of the server's tokenizer, from the usage of one probe completion (max_tokens 1, also a warm-up).
     * Without an answer the bench still runs, assuming 1.3, and the requests' own failures are reported.
     */
    private static double tokensPerWord(StreamedCompletion completion, String model, long seed, PrintStream err) throws InterruptedException {
        StreamedCompletion.Result probe = completion.send(model, BenchPrompts.probe(seed), 1);
        if (probe.ok() && probe.numPromptTokens() > 0) {
            double ratio = (double) probe.numPromptTokens() / BenchPrompts.PROBE_WORDS;
            err.printf(Locale.ROOT, "tessera bench serve: probe prompt of %d words is %d tokens (%.2f per word)%n",
                    BenchPrompts.PROBE_WORDS, probe.numPromptTokens(), ratio);
            return ratio;
        }
        err.println("tessera bench serve: probe request gave no prompt token count ("
                + (probe.ok() ? "no usage chunk" : probe.error()) + "); assuming 1.3 tokens per word");
        return 1.3;
    }

    /** The completions URL: a base URL gets /v1/completions, a URL ending in /v1 gets /completions. */
    static URI endpoint(String url) {
        String u = url.strip();
        while (u.endsWith("/")) u = u.substring(0, u.length() - 1);
        if (!u.endsWith("/v1/completions")) u += u.endsWith("/v1") ? "/completions" : "/v1/completions";
        URI uri;
        try {
            uri = URI.create(u);
        } catch (IllegalArgumentException e) {
            throw new CliArgs.UsageException("--url '" + url + "' is not a URL: " + e.getMessage());
        }
        if (!"http".equals(uri.getScheme()) && !"https".equals(uri.getScheme()) || uri.getHost() == null)
            throw new CliArgs.UsageException("--url '" + url + "' must be http://HOST:PORT or https://HOST:PORT");
        return uri;
    }
}
