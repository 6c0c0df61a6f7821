package dev.tessera.serving.chat;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import dev.tessera.models.gguf.GgufFile;
import java.time.Clock;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import jinjava.javax.el.CompositeELResolver;
import jinjava.javax.el.ELResolver;

/**
 * Turns a conversation into the prompt text a model was trained on, by rendering the model's own Jinja chat
 * template ({@code tokenizer.chat_template} in the GGUF) the way Hugging Face transformers does: Jinja2 with
 * {@code trim_blocks} and {@code lstrip_blocks}, the {@code loopcontrols} extension, and the globals
 * {@code raise_exception} and {@code strftime_now}; variables {@code messages}, {@code add_generation_prompt},
 * {@code bos_token} and {@code eos_token}.
 *
 * <p>The engine is Jinjava. Where Jinjava's reading of a template differs from Jinja2's, this class closes
 * the gap: Python string and dict methods ({@link PythonMethodResolver}), Python's {@code tojson}
 * ({@link PythonJsonFilter}), and the parse differences in {@link Jinja2Rewriter}. {@code ChatTemplateTest}
 * checks the result byte for byte against Jinja2 3.1.6 on real templates.
 *
 * <p>A GGUF without a chat template gets {@link #FALLBACK_TEMPLATE}: ChatML, the format transformers used as
 * its default template and llama.cpp falls back to:
 * <pre>
 * &lt;|im_start|&gt;user
 * Hello&lt;|im_end|&gt;
 * &lt;|im_start|&gt;assistant
 * </pre>
 *
 * <p>Instances are immutable and safe to share between request threads.
 */
public final class ChatTemplate {

    /** ChatML, used when the model ships no template (docs/CHAT.md). */
    public static final String FALLBACK_TEMPLATE = """
            {%- for message in messages %}
                {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}
            {%- endfor %}
            {%- if add_generation_prompt %}
                {{- '<|im_start|>assistant\\n' }}
            {%- endif %}
            """;

    private static final Jinjava ENGINE = newEngine();

    private final String source;
    private final String rewritten;
    private final String bosToken;
    private final String eosToken;
    private final Clock clock;
    private final boolean fallback;

    private ChatTemplate(String source, String bosToken, String eosToken, Clock clock, boolean fallback) {
        this.source = Objects.requireNonNull(source, "source");
        this.rewritten = Jinja2Rewriter.rewrite(withoutTrailingNewline(source));
        this.bosToken = bosToken == null ? "" : bosToken;
        this.eosToken = eosToken == null ? "" : eosToken;
        this.clock = Objects.requireNonNull(clock, "clock");
        this.fallback = fallback;
    }

    /** A template from its Jinja source; {@code strftime_now} reads the system clock. */
    public static ChatTemplate of(String source, String bosToken, String eosToken) {
        return new ChatTemplate(source, bosToken, eosToken, Clock.systemDefaultZone(), false);
    }

    /** A template whose {@code strftime_now} reads {@code clock} (tests pin the date). */
    public static ChatTemplate of(String source, String bosToken, String eosToken, Clock clock) {
        return new ChatTemplate(source, bosToken, eosToken, clock, false);
    }

    /** The fallback ChatML template with the given special tokens. */
    public static ChatTemplate fallback(String bosToken, String eosToken) {
        return new ChatTemplate(FALLBACK_TEMPLATE, bosToken, eosToken, Clock.systemDefaultZone(), true);
    }

    /**
     * The model's template from {@code tokenizer.chat_template}, with the texts of its BOS and EOS tokens
     * ({@code tokenizer.ggml.tokens[tokenizer.ggml.bos_token_id]}); {@link #FALLBACK_TEMPLATE} when the GGUF
     * has no template.
     */
    public static ChatTemplate fromGguf(GgufFile file) {
        String[] tokens = file.getStringArray("tokenizer.ggml.tokens");
        String bos = tokenText(tokens, file.getLong("tokenizer.ggml.bos_token_id", -1));
        String eos = tokenText(tokens, file.getLong("tokenizer.ggml.eos_token_id", -1));
        String template = file.getString("tokenizer.chat_template", null);
        if (template == null || template.isBlank()) return fallback(bos, eos);
        return of(template, bos, eos);
    }

    private static String tokenText(String[] tokens, long id) {
        return tokens != null && id >= 0 && id < tokens.length ? tokens[(int) id] : "";
    }

    public String source() {
        return source;
    }

    public String bosToken() {
        return bosToken;
    }

    public String eosToken() {
        return eosToken;
    }

    /** True when the model had no template and {@link #FALLBACK_TEMPLATE} is used. */
    public boolean isFallback() {
        return fallback;
    }

    /**
     * The prompt for {@code messages}; with {@code addGenerationPrompt} it ends with the header that opens
     * the assistant's turn.
     *
     * @throws ChatTemplateException when the template refuses the conversation ({@code raise_exception}) or
     *     fails to render
     */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return render(messages, addGenerationPrompt, Map.of());
    }

    /**
     * As {@link #render(List, boolean)}, with extra template variables (for example {@code tools},
     * {@code enable_thinking}, {@code date_string}), which win over the defaults.
     */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt, Map<String, ?> extraVariables) {
        List<Map<String, Object>> list = new ArrayList<>(messages.size());
        for (ChatMessage m : messages) {
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("role", m.role());
            entry.put("content", m.content());
            list.add(entry);
        }
        Map<String, Object> variables = new HashMap<>();
        variables.put("messages", list);
        variables.put("add_generation_prompt", addGenerationPrompt);
        variables.put("bos_token", bosToken);
        variables.put("eos_token", eosToken);
        // Functions are not variables in Jinjava; templates test "strftime_now is defined" before calling it.
        variables.put("strftime_now", "strftime_now");
        variables.put("raise_exception", "raise_exception");
        variables.putAll(extraVariables);

        Jinja2Globals.RenderState state = new Jinja2Globals.RenderState(ZonedDateTime.now(clock));
        Jinja2Globals.CURRENT.set(state);
        RenderResult result;
        try {
            result = ENGINE.renderForResult(rewritten, variables);
        } finally {
            Jinja2Globals.CURRENT.remove();
        }
        if (state.raised != null) throw new ChatTemplateException(state.raised, true);
        for (TemplateError error : result.getErrors()) {
            if (error.getSeverity() == TemplateError.ErrorType.FATAL) {
                throw new ChatTemplateException(
                        "chat template failed at line " + error.getLineno() + ": " + oneLine(error.getMessage()), false);
            }
        }
        return result.getOutput();
    }

    /**
     * Jinja2 drops one newline at the end of the template source (keep_trailing_newline=False). Jinjava's
     * option of that name trims the rendered output instead, which also eats a newline the template printed.
     */
    private static String withoutTrailingNewline(String s) {
        if (s.endsWith("\r\n")) return s.substring(0, s.length() - 2);
        if (s.endsWith("\n") || s.endsWith("\r")) return s.substring(0, s.length() - 1);
        return s;
    }

    private static String oneLine(String s) {
        return s == null ? "" : s.replace('\n', ' ').replace('\r', ' ');
    }

    private static Jinjava newEngine() {
        ELResolver resolver = new CompositeELResolver() {
            {
                add(new PythonMethodResolver());
                add(com.hubspot.jinjava.el.JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
            }
        };
        LegacyOverrides jinja2 = LegacyOverrides.newBuilder()
                .withEvaluateMapKeys(true)
                .withIterateOverMapKeys(true)
                .withUsePyishObjectMapper(true)
                .withUseNaturalOperatorPrecedence(true)
                .withParseWhitespaceControlStrictly(true)
                .withAllowAdjacentTextNodes(true)
                .withUseTrimmingForNotesAndExpressions(true)
                .withKeepNullableLoopValues(true)
                .withHandleBackslashInQuotesOnly(true)
                .build();
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withKeepTrailingNewline(true)
                .withLegacyOverrides(jinja2)
                .withElResolver(resolver)
                .withMaxOutputSize(64L << 20)
                .build();
        Jinjava engine = new Jinjava(config);
        // This constructor makes the package-private methods accessible to Jinjava's EL.
        engine.getGlobalContext().registerFunction(
                new ELFunctionDefinition("", "raise_exception", Jinja2Globals.class, "raiseException", Object.class));
        engine.getGlobalContext().registerFunction(
                new ELFunctionDefinition("", "strftime_now", Jinja2Globals.class, "strftimeNow", String.class));
        engine.getGlobalContext().registerFilter(new PythonJsonFilter());
        return engine;
    }
}
