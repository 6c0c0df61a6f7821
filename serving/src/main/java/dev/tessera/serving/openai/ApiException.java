package dev.tessera.serving.openai;

/**
 * A request that gets an error response: the HTTP status and the OpenAI error body. Thrown by validation and the
 * handlers, turned into a response in one place ({@code dev.tessera.serving.http.Responses}).
 */
public final class ApiException extends RuntimeException {
    private final int status;
    private final OpenAiError body;
    private final Integer retryAfterSeconds;

    public ApiException(int status, String type, String message, String param, String code) {
        this(status, type, message, param, code, null);
    }

    private ApiException(int status, String type, String message, String param, String code, Integer retryAfterSeconds) {
        super(message, null, false, false);
        this.status = status;
        this.body = OpenAiError.of(message, type, param, code);
        this.retryAfterSeconds = retryAfterSeconds;
    }

    public int status() { return status; }

    public OpenAiError body() { return body; }

    /** Seconds for a Retry-After header, or null. */
    public Integer retryAfterSeconds() { return retryAfterSeconds; }

    /** 400 for a bad parameter. */
    public static ApiException invalid(String param, String message) {
        return new ApiException(400, "invalid_request_error", message, param, param == null ? null : "invalid_value");
    }

    public static ApiException unauthorized(String message) {
        return new ApiException(401, "authentication_error", message, null, "invalid_api_key");
    }

    public static ApiException notFound(String message, String param, String code) {
        return new ApiException(404, "not_found_error", message, param, code);
    }

    public static ApiException methodNotAllowed(String message) {
        return new ApiException(405, "invalid_request_error", message, null, "method_not_allowed");
    }

    public static ApiException tooLarge(String message) {
        return new ApiException(413, "invalid_request_error", message, null, "request_too_large");
    }

    public static ApiException unsupportedMediaType(String message) {
        return new ApiException(415, "invalid_request_error", message, null, "unsupported_media_type");
    }

    public static ApiException overloaded(String message, int retryAfterSeconds) {
        return new ApiException(429, "rate_limit_error", message, null, "queue_full", retryAfterSeconds);
    }

    public static ApiException notReady(String message) {
        return new ApiException(503, "service_unavailable_error", message, null, "model_not_ready", 1);
    }

    /** The server is stopping: the request was ended, or not started. */
    public static ApiException shuttingDown(String message) {
        return new ApiException(503, "service_unavailable_error", message, null, "server_shutting_down", 1);
    }

    /** A device the engine computes on (a tensor-parallel worker) is gone; the server itself keeps serving. */
    public static ApiException deviceUnavailable(String message) {
        return new ApiException(503, "service_unavailable_error", message, null, "device_unavailable", 1);
    }

    public static ApiException serverError(String message) {
        return new ApiException(500, "server_error", message, null, null);
    }
}
