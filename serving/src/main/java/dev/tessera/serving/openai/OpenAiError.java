package dev.tessera.serving.openai;

/**
 * The OpenAI error body: {@code {"error": {"message", "type", "param", "code"}}}.
 *
 * @param error the error itself
 */
public record OpenAiError(Detail error) {

    /**
     * @param type  {@code invalid_request_error}, {@code authentication_error}, {@code not_found_error},
     *              {@code rate_limit_error}, {@code server_error}, ...
     * @param param the request field at fault, or null
     * @param code  a machine-readable code, or null
     */
    public record Detail(String message, String type, String param, String code) {}

    public static OpenAiError of(String message, String type, String param, String code) {
        return new OpenAiError(new Detail(message, type, param, code));
    }
}
