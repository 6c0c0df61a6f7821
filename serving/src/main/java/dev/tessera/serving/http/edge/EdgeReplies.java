package dev.tessera.serving.http.edge;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.serving.openai.OpenAiError;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/** Responses the edge writes itself: an OpenAI error body and {@code Connection: close}. */
final class EdgeReplies {
    private static final ObjectMapper JSON = new ObjectMapper();

    private EdgeReplies() {}

    static void error(OutputStream out, int status, String code, String message, boolean withBody) throws IOException {
        byte[] body = body(status, code, message);
        StringBuilder head = new StringBuilder("HTTP/1.1 ").append(status).append(' ').append(reason(status)).append("\r\n")
                .append("Content-Type: application/json\r\n")
                .append("Content-Length: ").append(body.length).append("\r\n")
                .append("Connection: close\r\n");
        if (status == 503) head.append("Retry-After: 1\r\n");
        head.append("\r\n");
        out.write(head.toString().getBytes(StandardCharsets.US_ASCII));
        if (withBody) out.write(body);
        out.flush();
    }

    /** The OpenAI error body for a status. */
    static byte[] body(int status, String code, String message) {
        String type = switch (status) {
            case 503 -> "service_unavailable_error";
            case 500, 502 -> "server_error";
            default -> "invalid_request_error";
        };
        try {
            return JSON.writeValueAsBytes(OpenAiError.of(message, type, null, code));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot serialize an error body: " + e.getMessage(), e);
        }
    }

    static String reason(int status) {
        return switch (status) {
            case 400 -> "Bad Request";
            case 408 -> "Request Timeout";
            case 413 -> "Content Too Large";
            case 404 -> "Not Found";
            case 405 -> "Method Not Allowed";
            case 414 -> "URI Too Long";
            case 417 -> "Expectation Failed";
            case 431 -> "Request Header Fields Too Large";
            case 500 -> "Internal Server Error";
            case 502 -> "Bad Gateway";
            case 503 -> "Service Unavailable";
            case 505 -> "HTTP Version Not Supported";
            default -> "Error";
        };
    }
}
