package dev.tessera.serving.cli.benchserve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One streamed {@code POST /v1/completions} against any OpenAI-compatible server, timed as it arrives: time to the
 * first content chunk, the gaps between content chunks, and end to end. Every failure (a non-200 status, an error
 * event, a broken stream, a timeout) becomes a {@link Result} with an error, never an exception.
 */
public final class StreamedCompletion {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final int MAX_ERROR_CHARS = 200;

    /**
     * The measurements of one request. Times in nanoseconds; interTokenNanos holds the gaps between successive content
     * chunks; numOutputTokens comes from the usage chunk, or counts content chunks when the server sends none;
     * numPromptTokens is -1 without usage. error is null on success.
     */
    public record Result(long ttftNanos, long[] interTokenNanos, long e2eNanos, int numOutputTokens, int numPromptTokens, String error) {
        public boolean ok() { return error == null; }

        static Result failed(long e2eNanos, String error) {
            return new Result(-1, new long[0], e2eNanos, 0, -1, error);
        }
    }

    private final HttpClient client;
    private final URI endpoint;
    private final String apiKey;
    private final Duration timeout;

    public StreamedCompletion(HttpClient client, URI endpoint, String apiKey, Duration timeout) {
        this.client = client;
        this.endpoint = endpoint;
        this.apiKey = apiKey;
        this.timeout = timeout;
    }

    /** The request body: greedy, exactly maxTokens unless the model stops earlier, streamed with a usage chunk. */
    public static String body(String model, String prompt, int maxTokens) {
        ObjectNode o = MAPPER.createObjectNode();
        o.put("model", model).put("prompt", prompt).put("max_tokens", maxTokens).put("temperature", 0).put("stream", true);
        o.putObject("stream_options").put("include_usage", true);
        return o.toString();
    }

    /** Sends one request and waits for its end, at most the timeout. */
    public Result send(String model, String prompt, int maxTokens) throws InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(endpoint)
                .header("Content-Type", "application/json")
                .header("Accept", "text/event-stream")
                .POST(HttpRequest.BodyPublishers.ofString(body(model, prompt, maxTokens)));
        if (apiKey != null) b.header("Authorization", "Bearer " + apiKey);
        long start = System.nanoTime();
        EventReader reader = new EventReader(start);
        CompletableFuture<HttpResponse<Void>> response = client.sendAsync(b.build(), HttpResponse.BodyHandlers.fromLineSubscriber(reader));
        int status;
        try {
            status = response.get(timeout.toNanos(), TimeUnit.NANOSECONDS).statusCode();
        } catch (TimeoutException e) {
            reader.cancel();
            response.cancel(true);
            return Result.failed(System.nanoTime() - start, "timeout: no end of stream after " + timeout.toSeconds() + " s");
        } catch (ExecutionException e) {
            Throwable cause = e.getCause() == null ? e : e.getCause();
            return Result.failed(System.nanoTime() - start, oneLine(cause.getClass().getSimpleName() + ": " + cause.getMessage()));
        } catch (InterruptedException e) {
            reader.cancel();
            response.cancel(true);
            throw e;
        }
        long end = System.nanoTime();
        return reader.result(status, end - start);
    }

    /** Parses server-sent events line by line as they arrive, stamping each content chunk. */
    private static final class EventReader implements Flow.Subscriber<String> {
        private final long startNanos;
        private final List<Long> contentNanos = new ArrayList<>();
        private final StringBuilder otherLines = new StringBuilder();
        private volatile Flow.Subscription subscription;
        private int usageCompletionTokens = -1, usagePromptTokens = -1;
        private String error;
        private boolean done;

        EventReader(long startNanos) { this.startNanos = startNanos; }

        @Override public void onSubscribe(Flow.Subscription s) {
            subscription = s;
            s.request(Long.MAX_VALUE);
        }

        @Override public void onNext(String line) {
            long now = System.nanoTime();
            if (!line.startsWith("data:")) {
                // Blank separators and comments are SSE framing; anything else is a non-SSE body such as an error.
                if (!line.isBlank() && !line.startsWith(":") && !line.startsWith("event:") && !line.startsWith("id:")
                        && otherLines.length() < MAX_ERROR_CHARS) otherLines.append(line.strip()).append(' ');
                return;
            }
            String data = line.substring(5).strip();
            if (data.equals("[DONE]")) { done = true; return; }
            JsonNode event;
            try {
                event = MAPPER.readTree(data);
            } catch (Exception e) {
                if (error == null) error = oneLine("malformed event: " + data);
                return;
            }
            if (event.has("error")) {
                if (error == null) error = oneLine("error event: " + errorMessage(event));
                return;
            }
            JsonNode choices = event.path("choices");
            for (JsonNode c : choices) {
                String text = c.path("text").asText("");
                if (!text.isEmpty()) { contentNanos.add(now - startNanos); break; }
            }
            JsonNode usage = event.get("usage");
            if (usage != null && usage.isObject()) {
                usageCompletionTokens = usage.path("completion_tokens").asInt(-1);
                usagePromptTokens = usage.path("prompt_tokens").asInt(-1);
            }
        }

        @Override public void onError(Throwable t) {
            if (error == null) error = oneLine("stream broken: " + t);
        }

        @Override public void onComplete() {}

        void cancel() {
            Flow.Subscription s = subscription;
            if (s != null) s.cancel();
        }

        /** Called after the response future completed, so every onNext happened before. */
        Result result(int status, long e2eNanos) {
            if (status != 200) {
                String body = otherLines.toString().strip();
                String message = body;
                try {
                    message = errorMessage(MAPPER.readTree(body));
                } catch (Exception ignored) {
                    // Not JSON: keep the raw text.
                }
                return Result.failed(e2eNanos, oneLine("HTTP " + status + (message.isEmpty() ? "" : ": " + message)));
            }
            if (error != null) return Result.failed(e2eNanos, error);
            if (!done) return Result.failed(e2eNanos, "stream ended without data: [DONE]");
            if (contentNanos.isEmpty()) return Result.failed(e2eNanos, "no content chunk in the stream");
            long[] gaps = new long[contentNanos.size() - 1];
            for (int i = 0; i < gaps.length; i++) gaps[i] = contentNanos.get(i + 1) - contentNanos.get(i);
            int numOutput = usageCompletionTokens >= 0 ? usageCompletionTokens : contentNanos.size();
            return new Result(contentNanos.getFirst(), gaps, e2eNanos, numOutput, usagePromptTokens, null);
        }
    }

    private static String errorMessage(JsonNode body) {
        JsonNode e = body.path("error");
        if (e.isObject()) return e.path("message").asText(e.toString());
        if (e.isTextual()) return e.asText();
        return body.toString();
    }

    private static String oneLine(String s) {
        String t = s.replaceAll("\\s+", " ").strip();
        return t.length() > MAX_ERROR_CHARS ? t.substring(0, MAX_ERROR_CHARS) + "…" : t;
    }
}
