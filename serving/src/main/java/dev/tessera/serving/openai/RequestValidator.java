package dev.tessera.serving.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tessera.models.sample.SamplingParams;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Typed, range-checked reads of request fields. Every failure is a 400 naming the field, the expectation and what was
 * found. A JSON null counts as absent, as in the OpenAI API; unknown fields are never looked at.
 */
public final class RequestValidator {
    public static final int MAX_N = 16;
    public static final int MAX_STOP_STRINGS = 4;

    private RequestValidator() {}

    public static ObjectNode requireObject(JsonNode root) {
        if (root == null || !root.isObject()) {
            throw ApiException.invalid(null, "request body must be a JSON object, found " + kind(root));
        }
        return (ObjectNode) root;
    }

    public static String requireString(ObjectNode o, String name) {
        String s = optString(o, name);
        if (s == null) throw ApiException.invalid(name, "'" + name + "' is required");
        return s;
    }

    public static String optString(ObjectNode o, String name) {
        JsonNode v = o.get(name);
        if (absent(v)) return null;
        if (!v.isTextual()) throw wrongType(name, "a string", v);
        return v.textValue();
    }

    public static Boolean optBoolean(ObjectNode o, String name) {
        JsonNode v = o.get(name);
        if (absent(v)) return null;
        if (!v.isBoolean()) throw wrongType(name, "a boolean", v);
        return v.booleanValue();
    }

    public static boolean optBoolean(ObjectNode o, String name, boolean fallback) {
        Boolean b = optBoolean(o, name);
        return b == null ? fallback : b;
    }

    /** A number in [min, max]. */
    public static Double optNumber(ObjectNode o, String name, double min, double max) {
        JsonNode v = o.get(name);
        if (absent(v)) return null;
        if (!v.isNumber()) throw wrongType(name, "a number", v);
        double d = v.doubleValue();
        if (!(d >= min && d <= max)) {
            throw ApiException.invalid(name, "'" + name + "' must be between " + fmt(min) + " and " + fmt(max) + ", found " + v);
        }
        return d;
    }

    /** An integer in [min, max] (16.0 counts as 16). */
    public static Integer optInt(ObjectNode o, String name, long min, long max) {
        Long l = optLong(o, name, min, max);
        return l == null ? null : l.intValue();
    }

    public static Long optLong(ObjectNode o, String name, long min, long max) {
        JsonNode v = o.get(name);
        if (absent(v)) return null;
        if (!v.isNumber() || !(v.isIntegralNumber() || v.canConvertToExactIntegral())) {
            throw wrongType(name, "an integer", v);
        }
        if (!v.canConvertToLong()) {
            throw ApiException.invalid(name, "'" + name + "' must be " + range(min, max) + ", found " + kind(v));
        }
        long l = v.longValue();
        if (l < min || l > max) {
            throw ApiException.invalid(name, "'" + name + "' must be " + range(min, max) + ", found " + v);
        }
        return l;
    }

    /** {@code stop}: a string or an array of up to 4 strings; empty strings are dropped. */
    public static List<String> stop(ObjectNode o) {
        JsonNode v = o.get("stop");
        List<String> out = new ArrayList<>();
        if (absent(v)) return out;
        if (v.isTextual()) {
            if (!v.textValue().isEmpty()) out.add(v.textValue());
            return out;
        }
        if (!v.isArray()) throw wrongType("stop", "a string or an array of strings", v);
        if (v.size() > MAX_STOP_STRINGS) {
            throw ApiException.invalid("stop", "'stop' takes at most " + MAX_STOP_STRINGS + " strings, found " + v.size());
        }
        for (JsonNode s : v) {
            if (!s.isTextual()) throw wrongType("stop", "an array of strings", s);
            if (!s.textValue().isEmpty()) out.add(s.textValue());
        }
        return out;
    }

    /**
     * The sampling fields both endpoints share: temperature, top_p, top_k, min_p, the three penalties, logit_bias and
     * seed. Token ids in logit_bias are checked against the vocabulary later, by the handler.
     *
     * @param numLogprobs how many alternatives the sampler reports per token
     */
    public static SamplingParams samplingParams(ObjectNode o, int numLogprobs) {
        SamplingParams p = SamplingParams.defaults().withNumLogprobs(numLogprobs);
        Double temperature = optNumber(o, "temperature", 0, SamplingParams.MAX_TEMPERATURE);
        if (temperature != null) p = p.withTemperature(temperature.floatValue());
        Double topP = optNumber(o, "top_p", 0, 1);
        if (topP != null) p = p.withTopP(topP.floatValue());
        // vLLM's top_k: -1 (or 0) switches it off.
        Integer topK = optInt(o, "top_k", -1, Integer.MAX_VALUE);
        if (topK != null) p = p.withTopK(Math.max(0, topK));
        Double minP = optNumber(o, "min_p", 0, 1);
        if (minP != null) p = p.withMinP(minP.floatValue());
        Double presence = optNumber(o, "presence_penalty", -SamplingParams.MAX_PENALTY, SamplingParams.MAX_PENALTY);
        if (presence != null) p = p.withPresencePenalty(presence.floatValue());
        Double frequency = optNumber(o, "frequency_penalty", -SamplingParams.MAX_PENALTY, SamplingParams.MAX_PENALTY);
        if (frequency != null) p = p.withFrequencyPenalty(frequency.floatValue());
        Double repetition = optNumber(o, "repetition_penalty", 0, SamplingParams.MAX_PENALTY);
        if (repetition != null) {
            if (repetition == 0) throw ApiException.invalid("repetition_penalty", "'repetition_penalty' must be > 0 (1 = off), found 0");
            p = p.withRepetitionPenalty(repetition.floatValue());
        }
        Long seed = optLong(o, "seed", Long.MIN_VALUE, Long.MAX_VALUE);
        if (seed != null) p = p.withSeed(seed);
        Map<Integer, Float> bias = logitBias(o);
        if (!bias.isEmpty()) p = p.withLogitBias(bias);
        return p;
    }

    /** {@code logit_bias}: an object from token id strings to numbers in [-100, 100]. */
    public static Map<Integer, Float> logitBias(ObjectNode o) {
        JsonNode v = o.get("logit_bias");
        Map<Integer, Float> out = new HashMap<>();
        if (absent(v)) return out;
        if (!v.isObject()) throw wrongType("logit_bias", "an object of token ids to numbers", v);
        Iterator<Map.Entry<String, JsonNode>> it = v.fields();
        while (it.hasNext()) {
            Map.Entry<String, JsonNode> e = it.next();
            int token;
            try {
                token = Integer.parseInt(e.getKey().trim());
            } catch (NumberFormatException ex) {
                throw ApiException.invalid("logit_bias", "'logit_bias' keys must be token ids, found '" + e.getKey() + "'");
            }
            if (token < 0) throw ApiException.invalid("logit_bias", "'logit_bias' token ids must be >= 0, found " + token);
            JsonNode b = e.getValue();
            if (!b.isNumber()) throw wrongType("logit_bias", "numbers as values", b);
            double d = b.doubleValue();
            if (!(d >= -SamplingParams.MAX_LOGIT_BIAS && d <= SamplingParams.MAX_LOGIT_BIAS)) {
                throw ApiException.invalid("logit_bias", "'logit_bias' values must be between -100 and 100, found " + b + " for token " + token);
            }
            out.put(token, (float) d);
        }
        return out;
    }

    /** {@code stream_options.include_usage}; stream_options without stream is an error, as in OpenAI. */
    public static boolean includeUsage(ObjectNode o, boolean stream) {
        JsonNode v = o.get("stream_options");
        if (absent(v)) return false;
        if (!v.isObject()) throw wrongType("stream_options", "an object", v);
        if (!stream) throw ApiException.invalid("stream_options", "'stream_options' is only allowed when 'stream' is true");
        Boolean b = optBoolean((ObjectNode) v, "include_usage");
        return b != null && b;
    }

    /** 400 when an unsupported feature is present (non-null). */
    public static void rejectPresent(ObjectNode o, String name, String what) {
        if (!absent(o.get(name))) throw ApiException.invalid(name, what + " is not supported by this server");
    }

    static boolean absent(JsonNode v) {
        return v == null || v.isNull() || v.isMissingNode();
    }

    static ApiException wrongType(String name, String expected, JsonNode found) {
        return ApiException.invalid(name, "'" + name + "' must be " + expected + ", found " + kind(found));
    }

    static String kind(JsonNode v) {
        if (v == null || v.isMissingNode()) return "nothing";
        String text = v.toString();
        if (text.length() > 40) text = text.substring(0, 40) + "...";
        return v.getNodeType().name().toLowerCase() + " " + text;
    }

    private static String range(long min, long max) {
        // Always both ends: "must be >= 1" read wrong for a value that was too large.
        return "between " + min + " and " + max;
    }

    private static String fmt(double d) {
        return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
    }
}
