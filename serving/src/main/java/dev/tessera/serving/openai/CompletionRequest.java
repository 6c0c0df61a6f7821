package dev.tessera.serving.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tessera.models.sample.SamplingParams;

import java.util.ArrayList;
import java.util.List;

import static dev.tessera.serving.openai.RequestValidator.*;

/**
 * {@code POST /v1/completions}, parsed and range-checked. Checks that need the model (token ids, context length,
 * the model name) are the handler's.
 *
 * @param prompts      one entry per prompt; each gets {@code n} choices
 * @param logprobs     alternatives per token, 0..5, or null for no logprobs
 */
public record CompletionRequest(String model, List<Prompt> prompts, int maxTokens, SamplingParams sampling, int n,
                                List<String> stop, boolean stream, boolean includeUsage, Integer logprobs,
                                boolean echo, String user) {

    public static final int DEFAULT_MAX_TOKENS = 16;
    public static final int MAX_LOGPROBS = 5;

    /** A prompt: text to tokenize, or token ids as given. */
    public sealed interface Prompt {
        record Text(String text) implements Prompt {}

        record Tokens(int[] ids) implements Prompt {}
    }

    public static CompletionRequest parse(JsonNode root) {
        ObjectNode o = requireObject(root);
        String model = requireString(o, "model");
        List<Prompt> prompts = prompts(o.get("prompt"));
        // max_tokens 0 with echo returns the prompt alone (with its logprobs when asked), as OpenAI's legacy API did.
        Integer maxTokens = optInt(o, "max_tokens", optBoolean(o, "echo", false) ? 0 : 1, Integer.MAX_VALUE);
        Integer n = optInt(o, "n", 1, MAX_N);
        Integer bestOf = optInt(o, "best_of", 1, MAX_N);
        if (bestOf != null && bestOf != (n == null ? 1 : n)) {
            throw ApiException.invalid("best_of", "'best_of' other than n is not supported by this server");
        }
        rejectPresent(o, "suffix", "'suffix'");
        Integer logprobs = optInt(o, "logprobs", 0, MAX_LOGPROBS);
        boolean echo = optBoolean(o, "echo", false);
        boolean stream = optBoolean(o, "stream", false);
        return new CompletionRequest(model, prompts, maxTokens == null ? DEFAULT_MAX_TOKENS : maxTokens,
                samplingParams(o, logprobs == null ? 0 : logprobs), n == null ? 1 : n, RequestValidator.stop(o), stream,
                RequestValidator.includeUsage(o, stream), logprobs, echo, optString(o, "user"));
    }

    /** A string, an array of strings, an array of token ids, or an array of arrays of token ids. */
    static List<Prompt> prompts(JsonNode v) {
        List<Prompt> out = new ArrayList<>();
        if (absent(v)) throw ApiException.invalid("prompt", "'prompt' is required");
        if (v.isTextual()) {
            out.add(new Prompt.Text(v.textValue()));
            return out;
        }
        if (!v.isArray()) throw wrongType("prompt", "a string, an array of strings or an array of token ids", v);
        if (v.isEmpty()) throw ApiException.invalid("prompt", "'prompt' must not be an empty array");
        JsonNode first = v.get(0);
        if (first.isNumber()) {
            out.add(new Prompt.Tokens(tokenIds(v)));
        } else if (first.isTextual()) {
            for (JsonNode s : v) {
                if (!s.isTextual()) throw wrongType("prompt", "an array of strings", s);
                out.add(new Prompt.Text(s.textValue()));
            }
        } else if (first.isArray()) {
            for (JsonNode a : v) {
                if (!a.isArray()) throw wrongType("prompt", "an array of token id arrays", a);
                if (a.isEmpty()) throw ApiException.invalid("prompt", "'prompt' token arrays must not be empty");
                out.add(new Prompt.Tokens(tokenIds(a)));
            }
        } else {
            throw wrongType("prompt", "a string, an array of strings or an array of token ids", first);
        }
        return out;
    }

    private static int[] tokenIds(JsonNode array) {
        int[] ids = new int[array.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode t = array.get(i);
            if (!t.isIntegralNumber() || !t.canConvertToInt() || t.intValue() < 0) {
                throw ApiException.invalid("prompt", "'prompt' token ids must be integers >= 0, found " + kind(t));
            }
            ids[i] = t.intValue();
        }
        return ids;
    }
}
