package dev.tessera.serving.http.edge;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A request line and its header lines, read strictly (RFC 9112): a malformed line is a 400, a long request line a
 * 414, too many or too large headers a 431, an HTTP version other than 1.0 and 1.1 a 505. Bytes past the head are
 * left unread.
 *
 * @param method  the request method, e.g. {@code POST}
 * @param target  the request target as sent, e.g. {@code /v1/completions?x=1}
 * @param minorVersion 0 for HTTP/1.0, 1 for HTTP/1.1
 * @param headers header lines in order, names as sent
 */
record RequestHead(String method, String target, int minorVersion, List<Header> headers) {

    /** One header line. */
    record Header(String name, String value) {}

    /** Returned when the client closed the connection before sending a byte of a new request. */
    static final RequestHead NONE = new RequestHead("", "", 1, List.of());

    /** Empty lines tolerated before a request line (RFC 9112 section 2.2: after a body some clients send CRLF). */
    private static final int MAX_LEADING_EMPTY_LINES = 4;

    /** Reads one head; {@link #NONE} at a clean end of stream before the first byte. */
    static RequestHead read(DeadlineInput in, EdgeLimits limits) throws IOException, EdgeError {
        byte[] line = new byte[Math.max(limits.maxRequestLineBytes(), limits.maxHeaderBytes()) + 2];
        int n;
        int empty = 0;
        while (true) {
            n = readLine(in, line, limits.maxRequestLineBytes(), true);
            if (n == -1) return NONE;
            if (n == -2) throw new EdgeError(414, "uri_too_long", "request line is longer than " + limits.maxRequestLineBytes() + " bytes");
            if (n > 0) break;
            if (++empty > MAX_LEADING_EMPTY_LINES) throw EdgeError.badRequest("request line missing: only empty lines");
        }
        String requestLine = new String(line, 0, n, StandardCharsets.ISO_8859_1);
        int sp1 = requestLine.indexOf(' ');
        int sp2 = sp1 < 0 ? -1 : requestLine.indexOf(' ', sp1 + 1);
        if (sp1 <= 0 || sp2 < 0 || requestLine.indexOf(' ', sp2 + 1) >= 0) {
            throw EdgeError.badRequest("malformed request line: expected 'METHOD TARGET HTTP/1.1'");
        }
        String method = requestLine.substring(0, sp1);
        String target = requestLine.substring(sp1 + 1, sp2);
        String version = requestLine.substring(sp2 + 1);
        if (!isToken(method)) throw EdgeError.badRequest("malformed request line: the method is not a token");
        if (target.isEmpty() || !isVisible(target)) throw EdgeError.badRequest("malformed request line: the target has control characters or is empty");
        int minor;
        if (version.equals("HTTP/1.1")) minor = 1;
        else if (version.equals("HTTP/1.0")) minor = 0;
        else if (version.matches("HTTP/[0-9]\\.[0-9]")) {
            throw new EdgeError(505, "http_version_not_supported", version + " is not supported; send HTTP/1.1 or HTTP/1.0");
        } else throw EdgeError.badRequest("malformed request line: the version is not HTTP/1.1 or HTTP/1.0");

        List<Header> headers = new ArrayList<>();
        int headerBytes = 0;
        while (true) {
            int room = limits.maxHeaderBytes() - headerBytes;
            n = readLine(in, line, Math.max(0, room), false);
            if (n == -1) throw new java.io.EOFException("client closed the connection within a request head");
            if (n == -2) throw new EdgeError(431, "request_header_fields_too_large", "request headers are larger than " + limits.maxHeaderBytes() + " bytes");
            if (n == 0) break;
            headerBytes += n + 2;
            if (headers.size() == limits.maxNumHeaders()) {
                throw new EdgeError(431, "request_header_fields_too_large", "more than " + limits.maxNumHeaders() + " header lines");
            }
            headers.add(parseHeader(line, n));
        }
        return new RequestHead(method, target, minor, List.copyOf(headers));
    }

    private static Header parseHeader(byte[] line, int n) throws EdgeError {
        if (line[0] == ' ' || line[0] == '\t') throw EdgeError.badRequest("header line starts with whitespace (obsolete line folding is not accepted)");
        int colon = -1;
        for (int i = 0; i < n; i++) {
            if (line[i] == ':') {
                colon = i;
                break;
            }
        }
        if (colon < 0) throw EdgeError.badRequest("header line without a colon");
        String name = new String(line, 0, colon, StandardCharsets.ISO_8859_1);
        if (!isToken(name)) throw EdgeError.badRequest("header name is empty or has characters a token may not have");
        int start = colon + 1;
        int end = n;
        while (start < end && (line[start] == ' ' || line[start] == '\t')) start++;
        while (end > start && (line[end - 1] == ' ' || line[end - 1] == '\t')) end--;
        for (int i = start; i < end; i++) {
            int c = line[i] & 0xff;
            if ((c < 0x20 && c != '\t') || c == 0x7f) throw EdgeError.badRequest("header " + name + " has a control character in its value");
        }
        return new Header(name, new String(line, start, end - start, StandardCharsets.ISO_8859_1));
    }

    /**
     * Reads a line ended by CRLF (or a bare LF) into buf without the ending.
     *
     * @return its length, -1 at end of stream before any byte (when allowed), -2 when longer than max
     */
    private static int readLine(DeadlineInput in, byte[] buf, int max, boolean eofAllowed) throws IOException, EdgeError {
        int n = 0;
        while (true) {
            int b = in.read();
            if (b < 0) {
                if (n == 0 && eofAllowed) return -1;
                throw new java.io.EOFException("client closed the connection within a request head");
            }
            if (b == '\n') return n;
            if (b == '\r') {
                int next = in.read();
                if (next == '\n') return n;
                throw EdgeError.badRequest("bare CR in the request head");
            }
            if (b == 0) throw EdgeError.badRequest("NUL byte in the request head");
            if (n >= max) return -2;
            buf[n++] = (byte) b;
        }
    }

    /** The values of every header of this name (case-insensitive). */
    List<String> all(String name) {
        List<String> out = new ArrayList<>(1);
        for (Header h : headers) if (h.name().equalsIgnoreCase(name)) out.add(h.value());
        return out;
    }

    /** The comma-separated tokens of every header of this name, lower-cased. */
    List<String> tokens(String name) {
        List<String> out = new ArrayList<>();
        for (String v : all(name)) {
            for (String t : v.split(",")) {
                String s = t.trim().toLowerCase(Locale.ROOT);
                if (!s.isEmpty()) out.add(s);
            }
        }
        return out;
    }

    static boolean isToken(String s) {
        if (s.isEmpty()) return false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            boolean ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || "!#$%&'*+-.^_`|~".indexOf(c) >= 0;
            if (!ok) return false;
        }
        return true;
    }

    private static boolean isVisible(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c <= 0x20 || c == 0x7f) return false;
        }
        return true;
    }
}
