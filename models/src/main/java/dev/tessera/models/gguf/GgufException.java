package dev.tessera.models.gguf;

/** A GGUF file that cannot be used; the message is one line naming the file and the problem. */
public final class GgufException extends RuntimeException {
    public GgufException(String message) {
        super(message);
    }
}
