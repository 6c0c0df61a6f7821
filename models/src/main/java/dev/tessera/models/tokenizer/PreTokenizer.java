package dev.tessera.models.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits text into words before byte-level BPE, with the regex set llama.cpp picks for {@code tokenizer.ggml.pre}
 * (src/llama-vocab.cpp, {@code llm_tokenizer_bpe}). The regexes run in order; each one cuts every current piece into
 * its matches and the text between them, and both are kept (llama.cpp's {@code unicode_regex_split}).
 *
 * <p>Character classes follow llama.cpp rather than the Java defaults: {@code \s} is the Unicode White_Space set
 * (llama.cpp maps non-ASCII whitespace to a stand-in that its {@code \s} matches, but not U+001C..U+001F), and
 * {@code \p{L}}, {@code \p{N}}, {@code \p{P}} are Unicode general categories. {@code $} is the end of the piece.
 */
final class PreTokenizer {
    /** Unicode White_Space, the code points llama.cpp flags as whitespace. */
    private static final String WS = "\\t\\n\\x0B\\f\\r\\x20\\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";
    private static final String S = "[" + WS + "]";
    private static final String NOT_S = "[^" + WS + "]";
    private static final String NOT_S_L_N = "[^" + WS + "\\p{L}\\p{N}]";

    private static final String GPT2 =
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?" + NOT_S_L_N + "+|" + S + "+(?!" + NOT_S + ")";

    private static final String CONTRACTIONS_ANY_CASE = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";

    private static String llama3Like(String numbers) {
        return CONTRACTIONS_ANY_CASE + "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" + numbers + "| ?" + NOT_S_L_N + "+[\\r\\n]*|"
                + S + "*[\\r\\n]+|" + S + "+(?!" + NOT_S + ")|" + S + "+";
    }

    private static final String LLAMA3 = llama3Like("\\p{N}{1,3}");
    private static final String QWEN2 = llama3Like("\\p{N}");

    /** CJK ideographs, U+0800..U+4E00 and Hangul, as in DeepSeek's tokenizer.json. */
    private static final String DEEPSEEK_CJK = "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+";

    /** DeepSeek LLM's list of cased letters (Latin, Greek, Cyrillic, Armenian, Georgian, ...). */
    private static final String DEEPSEEK_LETTERS = "A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}"
            + "\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}"
            + "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}"
            + "\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}"
            + "\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}"
            + "\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}"
            + "\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}"
            + "\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}"
            + "\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}"
            + "\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}"
            + "\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}"
            + "\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}"
            + "\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}"
            + "\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}"
            + "\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}"
            + "\\x{1E900}-\\x{1E943}";

    private static final List<String> DEFAULT_SET = List.of(
            "[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]");
    private static final List<String> FALCON_SET = List.of(
            "[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]");
    private static final List<String> STARCODER_SET = List.of("\\p{N}", GPT2);
    private static final List<String> DEEPSEEK_LLM_SET = List.of(
            "[\\r\\n]",
            S + "?[" + DEEPSEEK_LETTERS + "]+",
            S + "?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
            S + "+\\z",
            DEEPSEEK_CJK,
            "\\p{N}+");
    private static final List<String> DEEPSEEK_CODER_SET = List.of(
            "[\\r\\n]", S + "?\\p{L}+", S + "?\\p{P}+", DEEPSEEK_CJK, "\\p{N}");

    final String name;
    private final List<Pattern> patterns;
    /** Llama 3 style: a word that is itself a vocabulary token is emitted without merging. */
    final boolean ignoreMerges;
    /** The add_bos default for this pre-tokenizer when the metadata does not say. */
    final boolean addBos;

    private PreTokenizer(String name, List<String> regexes, boolean ignoreMerges, boolean addBos) {
        this.name = name;
        this.patterns = regexes.stream().map(Pattern::compile).toList();
        this.ignoreMerges = ignoreMerges;
        this.addBos = addBos;
    }

    /** The pre-tokenizer llama.cpp uses for this {@code tokenizer.ggml.pre} value, or null if it is not supported here. */
    static PreTokenizer forName(String pre) {
        return switch (pre) {
            case "default" -> new PreTokenizer(pre, DEFAULT_SET, false, false);
            case "llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral" -> new PreTokenizer(pre, List.of(LLAMA3), true, true);
            case "dbrx", "smaug-bpe" -> new PreTokenizer(pre, List.of(LLAMA3), false, false);
            case "deepseek-llm" -> new PreTokenizer(pre, DEEPSEEK_LLM_SET, false, false);
            case "deepseek-coder" -> new PreTokenizer(pre, DEEPSEEK_CODER_SET, false, false);
            case "falcon" -> new PreTokenizer(pre, FALCON_SET, false, false);
            case "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b" ->
                    new PreTokenizer(pre, STARCODER_SET, false, false);
            case "gpt-2", "mpt", "olmo", "jais", "phi-2", "roberta-bpe", "jina-es", "jina-de", "jina-v1-en",
                 "jina-v2-es", "jina-v2-de", "jina-v2-code", "gigachat" -> new PreTokenizer(pre, List.of(GPT2), false, false);
            case "qwen2", "deepseek-r1-qwen", "stablelm2" -> new PreTokenizer(pre, List.of(QWEN2), false, false);
            default -> null;
        };
    }

    /** The words of {@code text}, in order; concatenated they give back the text. */
    List<String> split(String text) {
        List<String> pieces = List.of(text);
        for (Pattern pattern : patterns) {
            List<String> next = new ArrayList<>(pieces.size() * 2);
            for (String piece : pieces) {
                Matcher m = pattern.matcher(piece);
                int done = 0;
                while (m.find()) {
                    if (m.start() > done) next.add(piece.substring(done, m.start()));
                    if (m.end() > m.start()) next.add(piece.substring(m.start(), m.end()));
                    done = m.end();
                }
                if (done < piece.length()) next.add(piece.substring(done));
            }
            pieces = next;
        }
        return pieces;
    }
}
