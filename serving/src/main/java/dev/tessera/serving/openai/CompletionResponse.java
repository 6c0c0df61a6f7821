package dev.tessera.serving.openai;

import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.List;
import java.util.Map;

/**
 * {@code POST /v1/completions} response, and each chunk of its stream (the same shape, {@code object}
 * "text_completion"; a chunk's {@code finish_reason} is null until the choice ends, and the usage chunk has no
 * choices).
 */
public record CompletionResponse(String id, String object, long created, String model, List<Choice> choices,
                                 @JsonInclude(JsonInclude.Include.NON_NULL) Usage usage) {

    public static final String OBJECT = "text_completion";

    /** @param logprobs null unless the request asked for logprobs */
    public record Choice(int index, String text, Logprobs logprobs, String finishReason) {}

    /**
     * OpenAI's legacy logprobs: parallel lists, one entry per generated token.
     *
     * @param topLogprobs per token, the most likely alternatives' texts to their log-probabilities
     * @param textOffset  per token, the char offset of its text within the choice's text
     */
    public record Logprobs(List<String> tokens, List<Float> tokenLogprobs, List<Map<String, Float>> topLogprobs,
                           List<Integer> textOffset) {}
}
