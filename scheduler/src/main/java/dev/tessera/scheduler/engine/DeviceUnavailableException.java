package dev.tessera.scheduler.engine;

/**
 * A device the engine computes on is gone (a tensor-parallel worker died or is unreachable). The request fails, the
 * engine keeps running, and a later request may succeed once the device is back: HTTP answers 503, not 500.
 */
public class DeviceUnavailableException extends RuntimeException {
    public DeviceUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
