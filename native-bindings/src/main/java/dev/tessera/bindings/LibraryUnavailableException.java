package dev.tessera.bindings;

/**
 * A native library (or one of its symbols) that a binding needs is not on this machine. The message is one line:
 * {@code CUDA unavailable: libcuda.so.1 not found (looked in: /usr/local/cuda/lib64, ...)}.
 */
public final class LibraryUnavailableException extends RuntimeException {
    public LibraryUnavailableException(String message) {
        super(message);
    }
}
