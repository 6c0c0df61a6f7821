package dev.tessera.kernels.collective;

/**
 * A collective operation failed: a peer closed its connection, sent a frame that does not check out, or said nothing
 * within the timeout. The message is one line naming the peer (address and rank). The group is unusable afterwards.
 */
public final class CollectiveException extends RuntimeException {
    public CollectiveException(String message) {
        super(message);
    }

    public CollectiveException(String message, Throwable cause) {
        super(message, cause);
    }
}
