package dev.tessera.serving.cli.benchserve;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * The summary of a {@code tessera bench serve} run, with vLLM benchmark_serving's quantities: request and output-token
 * throughput over the run's wall time, and mean/p50/p90/p99 of time to first token, inter-token latency (every gap
 * between content chunks of every request, pooled), time per output token and end-to-end latency, over successful
 * requests. Percentiles interpolate linearly between ranks, as numpy's default does.
 */
public final class LoadReport {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final double[] PERCENTILES = {50, 90, 99};

    /** What was asked for, echoed into the report. */
    public record Settings(String url, String model, int concurrency, int numRequests, int promptTokens, int genTokens,
                           int sharedPrefixTokens, double requestRate, long seed, double tokensPerWord) {}

    private final Settings settings;
    private final List<StreamedCompletion.Result> results;
    private final double durationSeconds;

    public LoadReport(Settings settings, List<StreamedCompletion.Result> results, double durationSeconds) {
        this.settings = settings;
        this.results = List.copyOf(results);
        this.durationSeconds = durationSeconds;
    }

    public int numCompleted() { return (int) results.stream().filter(StreamedCompletion.Result::ok).count(); }

    public int numFailed() { return results.size() - numCompleted(); }

    /** Failure messages and how often each occurred, in message order. */
    public Map<String, Integer> errors() {
        Map<String, Integer> errors = new TreeMap<>();
        for (StreamedCompletion.Result r : results) if (!r.ok()) errors.merge(r.error(), 1, Integer::sum);
        return errors;
    }

    public ObjectNode toJson() {
        List<StreamedCompletion.Result> ok = results.stream().filter(StreamedCompletion.Result::ok).toList();
        long outputTokens = ok.stream().mapToLong(StreamedCompletion.Result::numOutputTokens).sum();
        ObjectNode o = MAPPER.createObjectNode();
        o.put("url", settings.url()).put("model", settings.model()).put("concurrency", settings.concurrency())
                .put("arrivals", Double.isInfinite(settings.requestRate()) ? "closed_loop" : "poisson")
                .put("num_requests", settings.numRequests()).put("prompt_tokens", settings.promptTokens())
                .put("gen_tokens", settings.genTokens()).put("shared_prefix_tokens", settings.sharedPrefixTokens())
                .put("seed", settings.seed()).put("tokens_per_word", round(settings.tokensPerWord()));
        if (Double.isInfinite(settings.requestRate())) o.putNull("request_rate");
        else o.put("request_rate", settings.requestRate());
        o.put("completed", ok.size()).put("failed", numFailed()).put("duration_s", round(durationSeconds));
        o.put("total_output_tokens", outputTokens);
        double[] promptTokens = ok.stream().filter(r -> r.numPromptTokens() >= 0).mapToDouble(StreamedCompletion.Result::numPromptTokens).toArray();
        if (promptTokens.length > 0) o.put("mean_prompt_tokens", round(Arrays.stream(promptTokens).average().orElse(0)));
        o.put("request_throughput", round(ok.size() / durationSeconds));
        o.put("output_throughput", round(outputTokens / durationSeconds));
        stats(o, "ttft_ms", ok.stream().mapToDouble(r -> r.ttftNanos() / 1e6).toArray());
        stats(o, "itl_ms", ok.stream().flatMapToLong(r -> Arrays.stream(r.interTokenNanos())).mapToDouble(n -> n / 1e6).toArray());
        // Time per output token after the first, per request, as vLLM defines it.
        stats(o, "tpot_ms", ok.stream().filter(r -> r.numOutputTokens() > 1)
                .mapToDouble(r -> (r.e2eNanos() - r.ttftNanos()) / 1e6 / (r.numOutputTokens() - 1)).toArray());
        stats(o, "e2e_ms", ok.stream().mapToDouble(r -> r.e2eNanos() / 1e6).toArray());
        ObjectNode errors = o.putObject("errors");
        errors().forEach(errors::put);
        return o;
    }

    /** A readable table of the same numbers. */
    public String toTable() {
        ObjectNode j = toJson();
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%s  model %s  concurrency %d  request rate %s%n", settings.url(), settings.model(),
                settings.concurrency(), Double.isInfinite(settings.requestRate()) ? "inf (closed loop)" : settings.requestRate() + "/s (Poisson)"));
        sb.append(String.format(Locale.ROOT, "%d requests, ~%d prompt tokens (%s measured), %d gen tokens, shared prefix %d%n",
                settings.numRequests(), settings.promptTokens(), j.has("mean_prompt_tokens") ? j.get("mean_prompt_tokens").asText() : "none",
                settings.genTokens(), settings.sharedPrefixTokens()));
        row(sb, "completed / failed", j.get("completed").asInt() + " / " + j.get("failed").asInt());
        row(sb, "duration (s)", j.get("duration_s").asText());
        row(sb, "total output tokens", j.get("total_output_tokens").asText());
        row(sb, "request throughput (req/s)", fmt(j.get("request_throughput").asDouble()));
        row(sb, "output throughput (tok/s)", fmt(j.get("output_throughput").asDouble()));
        sb.append(String.format(Locale.ROOT, "%-28s %10s %10s %10s %10s%n", "latency (ms)", "mean", "p50", "p90", "p99"));
        for (String[] m : new String[][]{{"ttft_ms", "time to first token"}, {"itl_ms", "inter-token latency"},
                {"tpot_ms", "time per output token"}, {"e2e_ms", "end-to-end"}}) {
            sb.append(String.format(Locale.ROOT, "%-28s %10s %10s %10s %10s%n", m[1], fmt(j.path("mean_" + m[0]).asDouble(Double.NaN)),
                    fmt(j.path("p50_" + m[0]).asDouble(Double.NaN)), fmt(j.path("p90_" + m[0]).asDouble(Double.NaN)),
                    fmt(j.path("p99_" + m[0]).asDouble(Double.NaN))));
        }
        errors().forEach((message, count) -> sb.append(String.format(Locale.ROOT, "failed %dx: %s%n", count, message)));
        return sb.toString();
    }

    /** The p-th percentile (0–100) of values, linear between closest ranks; NaN when there are none. */
    public static double percentile(double[] values, double p) {
        if (values.length == 0) return Double.NaN;
        double[] s = values.clone();
        Arrays.sort(s);
        double rank = p / 100 * (s.length - 1);
        int lo = (int) Math.floor(rank), hi = (int) Math.ceil(rank);
        return s[lo] + (s[hi] - s[lo]) * (rank - lo);
    }

    private static void stats(ObjectNode o, String name, double[] values) {
        if (values.length == 0) return; // absent rather than NaN, which JSON cannot carry
        o.put("mean_" + name, round(Arrays.stream(values).average().orElseThrow()));
        for (double p : PERCENTILES) o.put("p" + (int) p + "_" + name, round(percentile(values, p)));
    }

    private static void row(StringBuilder sb, String name, String value) {
        sb.append(String.format(Locale.ROOT, "%-28s %10s%n", name, value));
    }

    private static String fmt(double v) {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.2f", v);
    }

    private static double round(double v) {
        return Math.round(v * 1e6) / 1e6; // ms to the nanosecond
    }
}
