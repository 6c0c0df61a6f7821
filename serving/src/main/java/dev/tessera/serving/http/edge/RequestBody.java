package dev.tessera.serving.http.edge;

import java.io.EOFException;
import java.io.IOException;
import java.util.Arrays;
import java.util.List;

/**
 * How long a request body is (RFC 9112 section 6) and reading it, bounded: a declared length over the limit is a 413
 * before a byte of the body is read, and a chunked body is counted as it arrives, so no request makes the edge hold
 * more than the limit. Ambiguous framing (two lengths, a length with chunked, codings other than chunked) is a 400:
 * a proxy in front might read it differently, and that is how requests are smuggled.
 */
final class RequestBody {
    /** A chunk-size line: up to 16 hex digits and an optional extension. */
    private static final int MAX_CHUNK_LINE_BYTES = 1024;

    private RequestBody() {}

    /** Body length in bytes, -1 for chunked; 0 when the request has no body. */
    static long length(RequestHead head) throws EdgeError {
        List<String> te = head.all("Transfer-Encoding");
        List<String> cl = head.all("Content-Length");
        if (!te.isEmpty()) {
            if (head.minorVersion() == 0) throw EdgeError.badRequest("Transfer-Encoding is not allowed in an HTTP/1.0 request");
            if (!cl.isEmpty()) throw EdgeError.badRequest("request has both Transfer-Encoding and Content-Length");
            List<String> codings = head.tokens("Transfer-Encoding");
            if (!codings.equals(List.of("chunked"))) {
                throw EdgeError.badRequest("Transfer-Encoding must be exactly 'chunked' (no other transfer coding is supported)");
            }
            return -1;
        }
        if (cl.isEmpty()) return 0;
        if (cl.size() > 1) throw EdgeError.badRequest("request has " + cl.size() + " Content-Length headers");
        String v = cl.get(0);
        if (v.isEmpty() || v.length() > 18 || !v.chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw EdgeError.badRequest("Content-Length must be a non-negative decimal integer of at most 18 digits");
        }
        return Long.parseLong(v);
    }

    /** Reads a body of a known length, at most maxBytes (checked by the caller). */
    static byte[] readFixed(DeadlineInput in, long length) throws IOException {
        byte[] body = new byte[(int) length];
        int off = 0;
        while (off < body.length) {
            int n = in.read(body, off, body.length - off);
            if (n < 0) throw new EOFException("client closed the connection within a request body");
            off += n;
        }
        return body;
    }

    /** Reads a chunked body, then its trailer section (ignored). */
    static byte[] readChunked(DeadlineInput in, EdgeLimits limits) throws IOException, EdgeError {
        byte[] body = new byte[(int) Math.min(limits.maxBodyBytes(), 8192)];
        int size = 0;
        byte[] line = new byte[MAX_CHUNK_LINE_BYTES];
        while (true) {
            int n = readLine(in, line, "chunk size line");
            int digits = 0;
            while (digits < n && hex(line[digits]) >= 0) digits++;
            if (digits == 0) throw EdgeError.badRequest("chunk size is not a hexadecimal number");
            if (digits > 16) throw EdgeError.badRequest("chunk size has more than 16 hexadecimal digits");
            if (digits < n && line[digits] != ';') throw EdgeError.badRequest("chunk size is not a hexadecimal number");
            long chunk = 0;
            boolean overflow = false;
            for (int i = 0; i < digits; i++) {
                if (chunk > (Long.MAX_VALUE >> 4)) overflow = true;
                chunk = (chunk << 4) | hex(line[i]);
            }
            if (overflow || chunk < 0 || size + chunk > limits.maxBodyBytes()) {
                throw new EdgeError(413, "request_too_large", "request body is over the limit of " + limits.maxBodyBytes() + " bytes");
            }
            if (chunk == 0) break;
            if (size + chunk > body.length) body = Arrays.copyOf(body, (int) Math.min(limits.maxBodyBytes(), Math.max(size + chunk, 2L * body.length)));
            int end = size + (int) chunk;
            while (size < end) {
                int r = in.read(body, size, end - size);
                if (r < 0) throw new EOFException("client closed the connection within a chunk");
                size += r;
            }
            int cr = in.read();
            int lf = cr == '\r' ? in.read() : cr;
            if (lf != '\n') throw EdgeError.badRequest("chunk data is longer than its chunk size");
        }
        // Trailer fields: read and dropped, within the header limit.
        int trailerBytes = 0;
        while (true) {
            int n = readLine(in, line, "trailer line");
            if (n == 0) break;
            trailerBytes += n;
            if (trailerBytes > limits.maxHeaderBytes()) throw new EdgeError(431, "request_header_fields_too_large", "trailer fields are larger than " + limits.maxHeaderBytes() + " bytes");
        }
        return Arrays.copyOf(body, size);
    }

    private static int readLine(DeadlineInput in, byte[] buf, String what) throws IOException, EdgeError {
        int n = 0;
        while (true) {
            int b = in.read();
            if (b < 0) throw new EOFException("client closed the connection within a " + what);
            if (b == '\n') return n;
            if (b == '\r') {
                if (in.read() == '\n') return n;
                throw EdgeError.badRequest("bare CR in a " + what);
            }
            if (n == buf.length) throw EdgeError.badRequest(what + " is longer than " + buf.length + " bytes");
            buf[n++] = (byte) b;
        }
    }

    private static int hex(byte b) {
        if (b >= '0' && b <= '9') return b - '0';
        if (b >= 'a' && b <= 'f') return b - 'a' + 10;
        if (b >= 'A' && b <= 'F') return b - 'A' + 10;
        return -1;
    }
}
