package dev.tessera.serving.http;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import dev.tessera.serving.openai.ApiException;
import io.helidon.common.media.type.MediaType;
import io.helidon.http.HttpMediaType;
import io.helidon.webserver.http.ServerRequest;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Optional;
import java.util.OptionalLong;

/** Reads a request body as JSON: 415 for a non-JSON content type, 413 past the size limit, 400 for bad JSON. */
public final class JsonBody {
    private JsonBody() {}

    public static JsonNode read(ServerRequest req, long maxBytes) {
        Optional<HttpMediaType> type = req.headers().contentType();
        if (type.isPresent()) {
            MediaType m = type.get().mediaType();
            boolean json = m.subtype().equals("json") || m.subtype().endsWith("+json");
            if (!json) throw ApiException.unsupportedMediaType("content type must be application/json, found " + m.text());
        }
        OptionalLong length = req.headers().contentLength();
        if (length.isPresent() && length.getAsLong() > maxBytes) {
            throw ApiException.tooLarge("request body of " + length.getAsLong() + " bytes is over the limit of " + maxBytes + " bytes");
        }
        byte[] bytes;
        try (InputStream in = req.content().inputStream()) {
            bytes = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, maxBytes + 1));
        } catch (IOException | UncheckedIOException e) {
            throw ApiException.invalid(null, "could not read the request body: " + e.getMessage());
        }
        if (bytes.length > maxBytes) {
            throw ApiException.tooLarge("request body is over the limit of " + maxBytes + " bytes");
        }
        if (bytes.length == 0) throw ApiException.invalid(null, "request body is empty, expected a JSON object");
        try {
            return Json.MAPPER.readTree(bytes);
        } catch (JsonProcessingException e) {
            throw ApiException.invalid(null, "malformed JSON: " + Responses.firstLine(e.getOriginalMessage())
                    + (e.getLocation() == null ? "" : " at line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr()));
        } catch (IOException e) {
            throw ApiException.invalid(null, "malformed JSON: " + Responses.firstLine(String.valueOf(e.getMessage())));
        }
    }
}
