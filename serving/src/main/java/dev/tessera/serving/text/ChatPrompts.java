package dev.tessera.serving.text;

import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.tokenizer.Tokenizer;
import dev.tessera.serving.chat.ChatMessage;
import dev.tessera.serving.chat.ChatTemplate;
import dev.tessera.serving.chat.ChatTemplateException;
import dev.tessera.serving.openai.ApiException;

import java.util.List;
import java.util.Map;

/** A conversation to prompt token ids: the model's chat template, then the tokenizer, with BOS added at most once. */
public final class ChatPrompts {
    private final ChatTemplate template;
    private final Tokenizer tokenizer;

    public ChatPrompts(ChatTemplate template, Tokenizer tokenizer) {
        this.template = template;
        this.tokenizer = tokenizer;
    }

    /** The GGUF's {@code tokenizer.chat_template}, or the fallback template when it has none. */
    public static ChatPrompts fromGguf(GgufFile file, Tokenizer tokenizer) {
        return new ChatPrompts(ChatTemplate.fromGguf(file), tokenizer);
    }

    public ChatTemplate template() {
        return template;
    }

    /** The rendered prompt text, ending with the header of the assistant's turn. */
    public String render(List<ChatMessage> messages) {
        return render(messages, Map.of());
    }

    /** As {@link #render(List)}, with the request's extra template variables ({@code chat_template_kwargs}). */
    public String render(List<ChatMessage> messages, Map<String, ?> templateVariables) {
        try {
            return template.render(messages, true, templateVariables);
        } catch (ChatTemplateException e) {
            // raise_exception in the template: the conversation is the client's mistake; anything else is ours.
            if (e.raisedByTemplate()) throw ApiException.invalid("messages", e.getMessage());
            throw ApiException.serverError("chat template failed: " + e.getMessage());
        }
    }

    /**
     * Token ids of a rendered prompt. Control-token texts in it (e.g. {@code <|im_start|>}) become their ids. BOS is
     * added when the vocabulary asks for it, unless the template already wrote it, as llama.cpp checks.
     */
    public int[] encode(String prompt) {
        int[] ids = tokenizer.encode(prompt, false, true);
        int bos = tokenizer.bosId();
        boolean addBos = tokenizer.addBos() && bos >= 0 && !prompt.startsWith(tokenizer.piece(bos));
        if (!addBos) return ids;
        int[] withBos = new int[ids.length + 1];
        withBos[0] = bos;
        System.arraycopy(ids, 0, withBos, 1, ids.length);
        return withBos;
    }
}
