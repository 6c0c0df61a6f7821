package dev.tessera.offload;

/** A memory node is gone, timed out, or answered garbage; the message names it and says what happened. */
public final class MemoryNodeException extends RuntimeException {
    public MemoryNodeException(String message, Throwable cause) {
        super(message, cause);
    }
}
