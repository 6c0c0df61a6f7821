package dev.tessera.serving.http;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tessera.serving.openai.ApiException;
import dev.tessera.serving.openai.ChatCompletionRequest;
import dev.tessera.serving.openai.CompletionRequest;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Fuzzes the request body path (bytes → JSON → validated completion and chat requests) for a fixed time budget:
 * every input must end as a parsed request or a 4xx {@link ApiException}; a 5xx or any other exception is a
 * failure, reported with the input that caused it. Mutations start from valid requests and splice in the values
 * hostile clients send (huge and fractional numbers, lone surrogates, overlong UTF-8, deep nesting, wrong types).
 * The budget is {@code -Dtessera.fuzz.seconds} (default 5); the seed {@code -Dtessera.fuzz.seed} replays a run.
 */
class RequestBodyFuzzTest {
    private static final List<String> SEEDS = List.of(
            "{\"model\":\"m\",\"prompt\":\"Once\",\"max_tokens\":3}",
            "{\"model\":\"m\",\"prompt\":[\"a\",\"b\"],\"n\":2,\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
            "{\"model\":\"m\",\"prompt\":[1,2,3],\"temperature\":0.5,\"top_p\":0.9,\"stop\":[\"x\",\"y\"],\"logprobs\":2,\"echo\":true}",
            "{\"model\":\"m\",\"prompt\":[[1,2],[3]],\"seed\":7,\"logit_bias\":{\"5\":-100},\"frequency_penalty\":1,\"presence_penalty\":-1}",
            "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_completion_tokens\":4}",
            "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"t\"}]}],"
                    + "\"logprobs\":true,\"top_logprobs\":3,\"n\":2,\"top_k\":5,\"min_p\":0.1,\"repetition_penalty\":1.1}");
    private static final List<String> VALUES = List.of("1000000000000", "-1", "0", "1e308", "-1e309", "1.5", "99999999999999999999999",
            "null", "true", "\"\"", "\"\\ud800\"", "\"\\udc00\\ud800\"", "[]", "{}", "[[[[[[[[[[]]]]]]]]]]", "\"\\u0000\"", "NaN",
            "\"" + "x".repeat(5000) + "\"", "[" + "1,".repeat(3000) + "1]", "{\"role\":\"user\"}", "[{\"role\":7}]", "-0", "1E-400");
    private static final List<String> KEYS = List.of("model", "prompt", "messages", "max_tokens", "n", "stream", "stop", "temperature",
            "top_p", "logprobs", "top_logprobs", "logit_bias", "seed", "echo", "stream_options", "content", "role", "max_completion_tokens");

    /** One input through the body path; throws when it ends other than as a request or a 4xx. */
    static void fuzzOne(byte[] input) {
        JsonNode node;
        try {
            node = JsonBody.parse(input);
        } catch (ApiException e) {
            requireClientError(e, input);
            return;
        }
        try {
            CompletionRequest.parse(node);
        } catch (ApiException e) {
            requireClientError(e, input);
        }
        try {
            ChatCompletionRequest.parse(node);
        } catch (ApiException e) {
            requireClientError(e, input);
        }
    }

    private static void requireClientError(ApiException e, byte[] input) {
        if (e.status() < 400 || e.status() >= 500) {
            throw new AssertionError("status " + e.status() + " for input " + new String(input, StandardCharsets.ISO_8859_1), e);
        }
    }

    @Test
    void bodyPathAnswersEveryInputWithARequestOrA4xx() {
        double seconds = Double.parseDouble(System.getProperty("tessera.fuzz.seconds", "5"));
        long seed = Long.getLong("tessera.fuzz.seed", System.nanoTime());
        SplittableRandom random = new SplittableRandom(seed);
        List<byte[]> corpus = new ArrayList<>();
        for (String s : SEEDS) corpus.add(s.getBytes(StandardCharsets.UTF_8));
        long end = System.nanoTime() + (long) (seconds * 1e9);
        long runs = 0;
        while (System.nanoTime() < end) {
            byte[] input = mutate(corpus.get(random.nextInt(corpus.size())), random);
            try {
                fuzzOne(input);
            } catch (RuntimeException | AssertionError | StackOverflowError e) {
                throw new AssertionError("seed " + seed + ", run " + runs + ": " + e + "\ninput: "
                        + new String(input, StandardCharsets.ISO_8859_1), e);
            }
            if (input.length < 20_000 && random.nextInt(50) == 0) corpus.add(input);
            runs++;
        }
        System.out.printf("RequestBodyFuzzTest: %d inputs in %.0f s, seed %d%n", runs, seconds, seed);
        assertTrue(runs > 0);
    }

    private static byte[] mutate(byte[] base, SplittableRandom r) {
        String s = new String(base, StandardCharsets.ISO_8859_1);
        int rounds = 1 + r.nextInt(4);
        for (int i = 0; i < rounds; i++) {
            switch (r.nextInt(7)) {
                case 0 -> { // replace a value after a key
                    String key = "\"" + KEYS.get(r.nextInt(KEYS.size())) + "\":";
                    int at = s.indexOf(key);
                    if (at >= 0) {
                        int from = at + key.length();
                        int to = valueEnd(s, from);
                        s = s.substring(0, from) + VALUES.get(r.nextInt(VALUES.size())) + s.substring(to);
                    }
                }
                case 1 -> { // add a key
                    int brace = s.indexOf('{');
                    if (brace >= 0) {
                        s = s.substring(0, brace + 1) + "\"" + KEYS.get(r.nextInt(KEYS.size())) + "\":" + VALUES.get(r.nextInt(VALUES.size())) + ","
                                + s.substring(brace + 1);
                    }
                }
                case 2 -> { // flip a byte
                    if (!s.isEmpty()) {
                        int at = r.nextInt(s.length());
                        s = s.substring(0, at) + (char) r.nextInt(256) + s.substring(at + 1);
                    }
                }
                case 3 -> { // cut
                    if (s.length() > 1) s = s.substring(0, r.nextInt(s.length()));
                }
                case 4 -> { // overlong or truncated UTF-8 inside a string
                    int at = s.indexOf('"', 1 + r.nextInt(Math.max(1, s.length() - 1)));
                    if (at > 0) s = s.substring(0, at) + (r.nextBoolean() ? "\u00c0\u00af" : "\u00e2\u0082") + s.substring(at);
                }
                case 5 -> { // deep nesting
                    int depth = 1 + r.nextInt(3000);
                    s = "{\"model\":\"m\",\"prompt\":" + "[".repeat(depth) + "1" + "]".repeat(r.nextInt(depth + 1)) + "}";
                }
                default -> { // duplicate a slice
                    if (s.length() > 2) {
                        int a = r.nextInt(s.length());
                        int b = a + r.nextInt(Math.min(64, s.length() - a));
                        s = s.substring(0, b) + s.substring(a, b) + s.substring(b);
                    }
                }
            }
        }
        return s.getBytes(StandardCharsets.ISO_8859_1);
    }

    /** The end of the JSON value starting at from (a rough scan: strings, brackets, scalars). */
    private static int valueEnd(String s, int from) {
        int depth = 0;
        boolean inString = false;
        for (int i = from; i < s.length(); i++) {
            char c = s.charAt(i);
            if (inString) {
                if (c == '\\') i++;
                else if (c == '"') {
                    inString = false;
                    if (depth == 0) return i + 1;
                }
            } else if (c == '"') inString = true;
            else if (c == '[' || c == '{') depth++;
            else if (c == ']' || c == '}') {
                if (depth == 0) return i;
                if (--depth == 0) return i + 1;
            } else if (c == ',' && depth == 0) return i;
        }
        return s.length();
    }
}
