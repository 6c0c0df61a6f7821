package dev.tessera.serving.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tessera.models.sample.SamplingParams;
import dev.tessera.serving.chat.ChatMessage;
import dev.tessera.serving.text.ReasoningSplitter;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static dev.tessera.serving.openai.RequestValidator.*;

/**
 * {@code POST /v1/chat/completions}, parsed and range-checked. Tools, functions and structured output are refused
 * with a 400 that says so.
 *
 * @param maxTokens         max_completion_tokens, else max_tokens; null = up to the end of the context
 * @param topLogprobs       alternatives per token, 0..20 (only with logprobs)
 * @param templateVariables {@code chat_template_kwargs}, as vLLM and llama-server take them: extra variables of the chat
 *                          template ({@code {"enable_thinking": false}} for Qwen3), JSON values as Java ones
 * @param splitReasoning    {@code reasoning_format}: "deepseek" (or "auto") puts the text of {@code <think>} blocks in
 *                          {@code reasoning_content}, "none" leaves it in the content; null: the server's default
 */
public record ChatCompletionRequest(String model, List<ChatMessage> messages, Integer maxTokens,
                                    SamplingParams sampling, int n, List<String> stop, boolean stream,
                                    boolean includeUsage, boolean logprobs, int topLogprobs, String user,
                                    Map<String, Object> templateVariables, Boolean splitReasoning) {

    /** Variables the server sets itself, or that would ask for function calling. */
    static final Set<String> RESERVED_TEMPLATE_VARIABLES = Set.of("messages", "add_generation_prompt", "bos_token", "eos_token",
            "raise_exception", "strftime_now", "tools", "functions", "documents");

    public static ChatCompletionRequest parse(JsonNode root) {
        ObjectNode o = requireObject(root);
        String model = requireString(o, "model");
        rejectPresent(o, "tools", "'tools' (function calling)");
        rejectPresent(o, "functions", "'functions' (function calling)");
        rejectPresent(o, "function_call", "'function_call' (function calling)");
        JsonNode toolChoice = o.get("tool_choice");
        if (!absent(toolChoice) && !(toolChoice.isTextual() && toolChoice.textValue().equals("none"))) {
            throw ApiException.invalid("tool_choice", "'tool_choice' (function calling) is not supported by this server");
        }
        JsonNode format = o.get("response_format");
        if (!absent(format)) {
            JsonNode type = format.isObject() ? format.get("type") : null;
            if (type == null || !type.isTextual() || !type.textValue().equals("text")) {
                throw ApiException.invalid("response_format", "'response_format' other than {\"type\": \"text\"} is not supported by this server");
            }
        }
        List<ChatMessage> messages = messages(o.get("messages"));
        Integer maxTokens = optInt(o, "max_completion_tokens", 1, Integer.MAX_VALUE);
        if (maxTokens == null) maxTokens = optInt(o, "max_tokens", 1, Integer.MAX_VALUE);
        Integer n = optInt(o, "n", 1, MAX_N);
        boolean logprobs = optBoolean(o, "logprobs", false);
        Integer topLogprobs = optInt(o, "top_logprobs", 0, SamplingParams.MAX_LOGPROBS);
        if (topLogprobs != null && !logprobs) {
            throw ApiException.invalid("top_logprobs", "'top_logprobs' needs 'logprobs' set to true");
        }
        int numTop = topLogprobs == null ? 0 : topLogprobs;
        boolean stream = optBoolean(o, "stream", false);
        return new ChatCompletionRequest(model, messages, maxTokens, samplingParams(o, numTop), n == null ? 1 : n,
                RequestValidator.stop(o), stream, RequestValidator.includeUsage(o, stream), logprobs, numTop, optString(o, "user"),
                templateVariables(o.get("chat_template_kwargs")), reasoningFormat(o.get("reasoning_format")));
    }

    /** llama-server's names ({@link ReasoningSplitter#splits}). */
    static Boolean reasoningFormat(JsonNode v) {
        if (absent(v)) return null;
        if (!v.isTextual()) throw wrongType("reasoning_format", "a string", v);
        Boolean splits = ReasoningSplitter.splits(v.textValue());
        if (splits == null)
            throw ApiException.invalid("reasoning_format", "'reasoning_format' must be none, deepseek or auto, found '" + v.textValue() + "'");
        return splits;
    }

    static Map<String, Object> templateVariables(JsonNode v) {
        if (absent(v)) return Map.of();
        if (!v.isObject()) throw wrongType("chat_template_kwargs", "an object", v);
        Map<String, Object> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : v.properties()) {
            if (RESERVED_TEMPLATE_VARIABLES.contains(e.getKey()))
                throw ApiException.invalid("chat_template_kwargs", "'chat_template_kwargs." + e.getKey() + "' cannot be set: "
                        + (e.getKey().equals("tools") || e.getKey().equals("functions") ? "function calling is not supported by this server"
                        : "the server sets it"));
            out.put(e.getKey(), plain(e.getValue()));
        }
        return out;
    }

    /** A JSON value as the Java value a template sees: String, Boolean, Long or Double, List, Map, or null. */
    private static Object plain(JsonNode v) {
        if (v.isNull()) return null;
        if (v.isTextual()) return v.textValue();
        if (v.isBoolean()) return v.booleanValue();
        if (v.isIntegralNumber()) return v.canConvertToLong() ? (Object) v.longValue() : (Object) v.doubleValue();
        if (v.isNumber()) return v.doubleValue();
        if (v.isArray()) {
            List<Object> list = new ArrayList<>();
            for (JsonNode x : v) list.add(plain(x));
            return list;
        }
        Map<String, Object> map = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : v.properties()) map.put(e.getKey(), plain(e.getValue()));
        return map;
    }

    static List<ChatMessage> messages(JsonNode v) {
        if (absent(v)) throw ApiException.invalid("messages", "'messages' is required");
        if (!v.isArray()) throw wrongType("messages", "an array of messages", v);
        if (v.isEmpty()) throw ApiException.invalid("messages", "'messages' must not be empty");
        List<ChatMessage> out = new ArrayList<>();
        for (int i = 0; i < v.size(); i++) {
            String param = "messages[" + i + "]";
            JsonNode m = v.get(i);
            if (!m.isObject()) throw wrongType(param, "an object", m);
            JsonNode roleNode = m.get("role");
            if (roleNode == null || !roleNode.isTextual()) throw ApiException.invalid(param + ".role", "'" + param + ".role' must be a string");
            String role = switch (roleNode.textValue()) {
                case "system", "developer" -> "system"; // OpenAI's newer name for the system turn
                case "user" -> "user";
                case "assistant" -> "assistant";
                case "tool", "function" -> throw ApiException.invalid(param + ".role", "role '" + roleNode.textValue() + "' (function calling) is not supported by this server");
                default -> throw ApiException.invalid(param + ".role", "'" + param + ".role' must be system, user or assistant, found '" + roleNode.textValue() + "'");
            };
            if (!absent(m.get("tool_calls")) || !absent(m.get("function_call"))) {
                throw ApiException.invalid(param + ".tool_calls", "tool calls (function calling) are not supported by this server");
            }
            out.add(new ChatMessage(role, content(m.get("content"), param + ".content", role)));
        }
        return out;
    }

    /** A string, or an array of {@code {"type": "text", "text": ...}} parts joined by newlines (as vLLM does). */
    private static String content(JsonNode c, String param, String role) {
        if (absent(c)) {
            if (role.equals("assistant")) return "";
            throw ApiException.invalid(param, "'" + param + "' is required");
        }
        if (c.isTextual()) return c.textValue();
        if (!c.isArray()) throw wrongType(param, "a string or an array of text parts", c);
        StringBuilder sb = new StringBuilder();
        for (int j = 0; j < c.size(); j++) {
            JsonNode part = c.get(j);
            JsonNode type = part.isObject() ? part.get("type") : null;
            if (type == null || !type.isTextual()) throw ApiException.invalid(param, "'" + param + "[" + j + "]' must be an object with a 'type'");
            if (!type.textValue().equals("text")) {
                throw ApiException.invalid(param, "content part type '" + type.textValue() + "' is not supported by this server; only 'text'");
            }
            JsonNode text = part.get("text");
            if (text == null || !text.isTextual()) throw ApiException.invalid(param, "'" + param + "[" + j + "].text' must be a string");
            if (j > 0) sb.append('\n');
            sb.append(text.textValue());
        }
        return sb.toString();
    }
}
