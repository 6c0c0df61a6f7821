package dev.tessera.serving;

/**
 * What the HTTP layer is configured with.
 *
 * @param servedModelName the name clients must send as {@code model}
 * @param apiKey          the key clients must send as {@code Authorization: Bearer KEY}, or null for none
 * @param maxBodyBytes    largest request body accepted; larger gets 413
 * @param splitReasoning  whether chat answers put &lt;think&gt; blocks in {@code reasoning_content} ({@code --reasoning-format deepseek})
 */
public record ServingConfig(String servedModelName, String apiKey, long maxBodyBytes, boolean splitReasoning) {
    public static final long DEFAULT_MAX_BODY_BYTES = 4L << 20;

    /** Thoughts stay in the content unless a request asks otherwise. */
    public ServingConfig(String servedModelName, String apiKey, long maxBodyBytes) {
        this(servedModelName, apiKey, maxBodyBytes, false);
    }

    public ServingConfig {
        if (servedModelName == null || servedModelName.isBlank()) throw new IllegalArgumentException("served model name is empty");
        if (apiKey != null && apiKey.isEmpty()) apiKey = null;
        if (maxBodyBytes < 1) throw new IllegalArgumentException("maxBodyBytes must be >= 1, found " + maxBodyBytes);
    }

    /** The served name for a model file: its file name without {@code .gguf}. */
    public static String defaultServedName(java.nio.file.Path model) {
        String name = model.getFileName().toString();
        return name.endsWith(".gguf") ? name.substring(0, name.length() - 5) : name;
    }
}
