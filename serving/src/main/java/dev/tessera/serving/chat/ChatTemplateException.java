package dev.tessera.serving.chat;

/**
 * A conversation the chat template refuses, or a template that fails to render.
 *
 * <p>When the template itself calls {@code raise_exception('msg')} the message is exactly {@code msg}
 * and {@link #raisedByTemplate()} is true: the client sent a conversation the model does not accept
 * (HTTP 400). Otherwise the message names the template line that failed.
 */
public final class ChatTemplateException extends RuntimeException {
    private final boolean raisedByTemplate;

    public ChatTemplateException(String message, boolean raisedByTemplate) {
        super(message);
        this.raisedByTemplate = raisedByTemplate;
    }

    /** True when the template's own {@code raise_exception} produced this error. */
    public boolean raisedByTemplate() {
        return raisedByTemplate;
    }
}
