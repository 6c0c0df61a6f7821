package dev.tessera.serving.http;

import dev.tessera.serving.openai.ApiException;
import io.helidon.http.HeaderNames;
import io.helidon.webserver.http.Filter;
import io.helidon.webserver.http.FilterChain;
import io.helidon.webserver.http.RoutingRequest;
import io.helidon.webserver.http.RoutingResponse;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;

/**
 * When a key is set, every {@code /v1/} request must send {@code Authorization: Bearer KEY}; health, readiness and
 * metrics stay open (as in vLLM). The comparison takes the same time wherever the first wrong byte is.
 */
public final class ApiKeyFilter implements Filter {
    private final byte[] key;

    /** @param apiKey the key, or null for none */
    public ApiKeyFilter(String apiKey) {
        this.key = apiKey == null ? null : apiKey.getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public void filter(FilterChain chain, RoutingRequest req, RoutingResponse res) {
        if (key == null || !req.path().absolute().path().startsWith("/v1/")) {
            chain.proceed();
            return;
        }
        String header = req.headers().first(HeaderNames.AUTHORIZATION).orElse(null);
        if (header == null) {
            res.header(HeaderNames.WWW_AUTHENTICATE, "Bearer");
            Responses.error(res, ApiException.unauthorized("missing API key: send 'Authorization: Bearer KEY'"));
            return;
        }
        String given = header.regionMatches(true, 0, "Bearer ", 0, 7) ? header.substring(7).trim() : "";
        if (!MessageDigest.isEqual(given.getBytes(StandardCharsets.UTF_8), key)) {
            res.header(HeaderNames.WWW_AUTHENTICATE, "Bearer");
            Responses.error(res, ApiException.unauthorized("incorrect API key"));
            return;
        }
        chain.proceed();
    }
}
