package dev.tessera.kernels;

/** A weight whose data no valid file holds (a non-finite block scale): loading stops with the tensor named. */
public final class CorruptTensorException extends IllegalArgumentException {
    public CorruptTensorException(String message) {
        super(message);
    }

    public CorruptTensorException(String message, Throwable cause) {
        super(message, cause);
    }
}
