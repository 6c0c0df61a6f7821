package dev.tessera.serving.openai;

import java.util.List;

/** Chat logprobs: {@code {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}}. */
public record ChatLogprobs(List<Entry> content) {

    /** @param bytes the token's UTF-8 bytes (a token may hold part of a character) */
    public record Entry(String token, float logprob, List<Integer> bytes, List<Top> topLogprobs) {}

    public record Top(String token, float logprob, List<Integer> bytes) {}
}
