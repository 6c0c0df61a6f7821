package dev.tessera.serving.http;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import dev.tessera.serving.openai.ApiException;
import io.helidon.common.media.type.MediaType;
import io.helidon.http.HttpMediaType;
import io.helidon.webserver.http.ServerRequest;

import java.io.IOException;
import java.io.InputStream;
import java.util.Iterator;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * Reads a request body as JSON: 415 for a non-JSON content type, 413 past the size limit, 400 for bad JSON or text
 * that is not valid Unicode (malformed or overlong UTF-8, lone UTF-16 surrogates in escapes). No message carries
 * request bytes or exception names.
 */
public final class JsonBody {
    private JsonBody() {}

    public static JsonNode read(ServerRequest req, long maxBytes) {
        Optional<HttpMediaType> type;
        try {
            type = req.headers().contentType();
        } catch (RuntimeException e) {
            // Helidon's parser rejects a malformed media type (";;;==") with its own exception.
            throw ApiException.invalid(null, "Content-Type header is not a valid media type; send application/json");
        }
        if (type.isPresent()) {
            MediaType m = type.get().mediaType();
            boolean json = m.subtype().equals("json") || m.subtype().endsWith("+json");
            if (!json) throw ApiException.unsupportedMediaType("content type must be application/json");
        }
        OptionalLong length;
        try {
            length = req.headers().contentLength();
        } catch (RuntimeException e) {
            throw ApiException.invalid(null, "Content-Length header is not a non-negative integer");
        }
        if (length.isPresent() && length.getAsLong() > maxBytes) {
            throw ApiException.tooLarge("request body of " + length.getAsLong() + " bytes is over the limit of " + maxBytes + " bytes");
        }
        byte[] bytes;
        try (InputStream in = req.content().inputStream()) {
            bytes = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, maxBytes + 1));
        } catch (IOException | RuntimeException e) {
            // Bad chunk framing and early ends surface here as various exceptions; all are the client's.
            throw ApiException.invalid(null, "could not read the request body: its framing is malformed or it ended early");
        }
        if (bytes.length > maxBytes) {
            throw ApiException.tooLarge("request body is over the limit of " + maxBytes + " bytes");
        }
        return parse(bytes);
    }

    /** Parses body bytes as one JSON value: a 400 for empty, invalid UTF-8, malformed JSON or lone surrogates. */
    public static JsonNode parse(byte[] bytes) {
        if (bytes.length == 0) throw ApiException.invalid(null, "request body is empty, expected a JSON object");
        int bad = firstInvalidUtf8(bytes);
        if (bad >= 0) throw ApiException.invalid(null, "request body is not valid UTF-8 text (malformed or overlong sequence at byte " + bad + ")");
        JsonNode node;
        try {
            node = Json.MAPPER.readTree(bytes);
        } catch (JsonProcessingException e) {
            throw ApiException.invalid(null, "malformed JSON" + (e.getLocation() == null ? ""
                    : " at line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr()));
        } catch (IOException | RuntimeException e) {
            throw ApiException.invalid(null, "malformed JSON");
        }
        if (node == null || node.isMissingNode()) throw ApiException.invalid(null, "request body is empty, expected a JSON object");
        String where = loneSurrogate(node, "");
        if (where != null) throw ApiException.invalid(where.isEmpty() ? null : where, "invalid text: a string has a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape)");
        return node;
    }

    /**
     * The offset of the first byte that does not start a well-formed UTF-8 sequence (RFC 3629: no overlong forms,
     * no encoded surrogates, nothing past U+10FFFF), or -1 when all are well formed.
     */
    static int firstInvalidUtf8(byte[] b) {
        int i = 0;
        int n = b.length;
        while (i < n) {
            int c = b[i] & 0xff;
            if (c < 0x80) {
                i++;
                continue;
            }
            int len;
            int min;
            if (c >= 0xc2 && c <= 0xdf) { len = 2; min = 0x80; }
            else if (c >= 0xe0 && c <= 0xef) { len = 3; min = 0x800; }
            else if (c >= 0xf0 && c <= 0xf4) { len = 4; min = 0x10000; }
            else return i;
            if (i + len > n) return i;
            int cp = c & (0xff >> (len + 1));
            for (int k = 1; k < len; k++) {
                int cc = b[i + k] & 0xff;
                if ((cc & 0xc0) != 0x80) return i;
                cp = (cp << 6) | (cc & 0x3f);
            }
            if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
            i += len;
        }
        return -1;
    }

    /** The path of the first string or field name with an unpaired surrogate ("" for the root), or null. */
    private static String loneSurrogate(JsonNode node, String path) {
        if (node.isTextual()) return hasLoneSurrogate(node.textValue()) ? path : null;
        if (node.isArray()) {
            for (int i = 0; i < node.size(); i++) {
                String p = loneSurrogate(node.get(i), path + "[" + i + "]");
                if (p != null) return p;
            }
        } else if (node.isObject()) {
            for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                String p = path.isEmpty() ? e.getKey() : path + "." + e.getKey();
                if (hasLoneSurrogate(e.getKey())) return path;
                String inner = loneSurrogate(e.getValue(), p);
                if (inner != null) return inner;
            }
        }
        return null;
    }

    private static boolean hasLoneSurrogate(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c)) {
                if (i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) i++;
                else return true;
            } else if (Character.isLowSurrogate(c)) {
                return true;
            }
        }
        return false;
    }
}
