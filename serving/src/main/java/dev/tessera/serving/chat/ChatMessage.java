package dev.tessera.serving.chat;

import java.util.Objects;

/** One turn of a conversation as a chat template sees it: {@code {"role": ..., "content": ...}}. */
public record ChatMessage(String role, String content) {
    public ChatMessage {
        Objects.requireNonNull(role, "role");
    }
}
