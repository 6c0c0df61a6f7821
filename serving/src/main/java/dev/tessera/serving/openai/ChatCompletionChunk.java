package dev.tessera.serving.openai;

import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.List;

/**
 * One streamed chunk of a chat completion ({@code object} "chat.completion.chunk"): the first delta of a choice
 * carries the role, later ones content, the last one the finish reason; the usage chunk has no choices.
 */
public record ChatCompletionChunk(String id, String object, long created, String model, List<Choice> choices,
                                  @JsonInclude(JsonInclude.Include.NON_NULL) Usage usage) {

    public static final String OBJECT = "chat.completion.chunk";

    public record Choice(int index, Delta delta, ChatLogprobs logprobs, String finishReason) {}

    /** Only the fields that changed. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Delta(String role, String content, String reasoningContent) {
        public Delta(String role, String content) {
            this(role, content, null);
        }
    }
}
