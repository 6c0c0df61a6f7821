package dev.tessera.serving.edge;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/** A client on a raw socket: writes exact bytes, reads responses byte by byte, and tells whether the server closed. */
final class RawConnection implements AutoCloseable {
    final Socket socket;
    private final InputStream in;
    private final OutputStream out;

    /** A parsed response. @param body the body as the wire framed it (de-chunked) */
    record Response(int status, String statusLine, Map<String, String> headers, byte[] body) {
        String text() {
            return new String(body, StandardCharsets.UTF_8);
        }

        String header(String name) {
            return headers.get(name.toLowerCase(Locale.ROOT));
        }
    }

    RawConnection(int port) throws IOException {
        socket = new Socket("127.0.0.1", port);
        socket.setSoTimeout(30_000);
        socket.setTcpNoDelay(true);
        in = socket.getInputStream();
        out = socket.getOutputStream();
    }

    RawConnection send(String s) throws IOException {
        return send(s.getBytes(StandardCharsets.ISO_8859_1));
    }

    RawConnection send(byte[] b) throws IOException {
        out.write(b);
        out.flush();
        return this;
    }

    /** Reads one response; for a HEAD request pass head=true (headers only). */
    Response read(boolean head) throws IOException {
        String statusLine = line();
        if (statusLine == null) throw new IOException("server closed the connection before a response");
        while (statusLine.startsWith("HTTP/1.1 100")) {
            while (!line().isEmpty()) {
                // interim response headers
            }
            statusLine = line();
        }
        int status = Integer.parseInt(statusLine.substring(9, 12));
        Map<String, String> headers = new LinkedHashMap<>();
        for (String l; !(l = line()).isEmpty(); ) {
            int c = l.indexOf(':');
            headers.merge(l.substring(0, c).trim().toLowerCase(Locale.ROOT), l.substring(c + 1).trim(), (a, b) -> a + ", " + b);
        }
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        if (!head && status != 204 && status != 304) {
            String te = headers.get("transfer-encoding");
            String cl = headers.get("content-length");
            if (te != null && te.contains("chunked")) {
                while (true) {
                    int size = Integer.parseInt(line().trim(), 16);
                    if (size == 0) {
                        while (!line().isEmpty()) {
                            // trailers
                        }
                        break;
                    }
                    body.write(in.readNBytes(size));
                    line();
                }
            } else if (cl != null) {
                body.write(in.readNBytes(Integer.parseInt(cl)));
            } else {
                body.write(in.readAllBytes());
            }
        }
        return new Response(status, statusLine, headers, body.toByteArray());
    }

    Response read() throws IOException {
        return read(false);
    }

    /** Sends a request and reads its response. */
    Response exchange(String request) throws IOException {
        send(request);
        return read(request.startsWith("HEAD "));
    }

    /** Whether the server closes the connection within the time (reads until end of stream, dropping any bytes). */
    boolean closedWithin(int millis) throws IOException {
        socket.setSoTimeout(millis);
        try {
            while (true) {
                int b = in.read();
                if (b < 0) return true;
            }
        } catch (SocketTimeoutException e) {
            return false;
        } catch (IOException e) {
            return true; // reset
        } finally {
            socket.setSoTimeout(30_000);
        }
    }

    /** Bytes the server sends within the time, until it closes or the time is up. */
    byte[] drain(int millis) throws IOException {
        socket.setSoTimeout(millis);
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        try {
            byte[] buf = new byte[8192];
            for (int n; (n = in.read(buf)) >= 0; ) all.write(buf, 0, n);
        } catch (SocketTimeoutException | java.net.SocketException e) {
            // time is up, or reset
        }
        return all.toByteArray();
    }

    private String line() throws IOException {
        StringBuilder sb = new StringBuilder();
        while (true) {
            int b = in.read();
            if (b < 0) return sb.isEmpty() ? null : sb.toString();
            if (b == '\n') break;
            sb.append((char) b);
        }
        int n = sb.length();
        if (n > 0 && sb.charAt(n - 1) == '\r') sb.setLength(n - 1);
        return sb.toString();
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
