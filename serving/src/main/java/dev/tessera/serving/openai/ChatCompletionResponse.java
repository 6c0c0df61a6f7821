package dev.tessera.serving.openai;

import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.List;

/** {@code POST /v1/chat/completions} response ({@code object} "chat.completion"). */
public record ChatCompletionResponse(String id, String object, long created, String model, List<Choice> choices,
                                     Usage usage) {

    public static final String OBJECT = "chat.completion";

    /** @param logprobs null unless the request asked for logprobs */
    public record Choice(int index, Message message, ChatLogprobs logprobs, String finishReason) {}

    /** The generated turn: role "assistant"; {@code reasoningContent} only when the reasoning is split off. */
    public record Message(String role, String content,
                          @JsonInclude(JsonInclude.Include.NON_NULL) String reasoningContent) {}
}
