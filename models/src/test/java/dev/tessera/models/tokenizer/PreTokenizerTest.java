package dev.tessera.models.tokenizer;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

class PreTokenizerTest {
    private static List<String> split(String pre, String text) {
        PreTokenizer p = PreTokenizer.forName(pre);
        assertNotNull(p, pre);
        List<String> words = p.split(text);
        assertEquals(text, String.join("", words), "words must cover the text");
        return words;
    }

    @Test
    void everySupportedNameCompiles() {
        for (String pre : List.of("default", "llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral", "dbrx", "smaug-bpe",
                "deepseek-llm", "deepseek-coder", "falcon", "starcoder", "refact", "command-r", "smollm", "codeshell",
                "exaone", "minerva-7b", "gpt-2", "mpt", "olmo", "jais", "phi-2", "roberta-bpe", "jina-es", "jina-de",
                "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code", "gigachat", "qwen2", "deepseek-r1-qwen", "stablelm2")) {
            assertNotNull(PreTokenizer.forName(pre), pre);
        }
        assertNull(PreTokenizer.forName("qwen35"));
        assertNull(PreTokenizer.forName(""));
    }

    @Test
    void llama3GroupsDigitsByThreeAndKeepsOneSpaceForTheNextWord() {
        assertEquals(List.of("Hello", " world", " ", "123", "456", "7"), split("llama-bpe", "Hello world 1234567"));
        // \s+(?!\S): the last space of a run goes with the following word
        assertEquals(List.of("a", "  ", " b"), split("llama-bpe", "a   b"));
        assertEquals(List.of("I", "'M", " fine"), split("llama-bpe", "I'M fine"));
        assertEquals(List.of("x", ";\n\n", "y"), split("llama-bpe", "x;\n\ny"));
        assertEquals(List.of("\n\n", "  ", " end"), split("llama-bpe", "\n\n   end"));
    }

    @Test
    void gpt2ContractionsAreCaseSensitiveAndDigitsUngrouped() {
        assertEquals(List.of("I", "'m", " fine"), split("gpt-2", "I'm fine"));
        assertEquals(List.of("I", "'", "M", " fine"), split("gpt-2", "I'M fine"));
        assertEquals(List.of("x", " 1234567"), split("gpt-2", "x 1234567"));
    }

    @Test
    void nonAsciiWhitespaceCountsAsWhitespace() {
        // U+3000 (ideographic space) and U+00A0 are \s for llama.cpp; Java's default \s would not match them
        assertEquals(List.of("a", "\u3000\u3000", " b"), split("gpt-2", "a\u3000\u3000 b"));
        assertEquals(List.of("a", "\u00A0", "b"), split("gpt-2", "a\u00A0b"));
    }

    @Test
    void qwen2SplitsEveryDigit() {
        assertEquals(List.of("x", "1", "2", "3"), split("qwen2", "x123"));
    }

    @Test
    void starcoderAndDefaultPreSplitDigitsFirst() {
        assertEquals(List.of("a", "1", "2", "3"), split("starcoder", "a123"));
        assertEquals(List.of("a", "123", "4"), split("default", "a1234"));
    }

    @Test
    void deepseekLlmSeparatesCjkAndCasedLetters() {
        // the space cannot join 世界 (not a listed letter), so it stays alone; digits split off last
        assertEquals(List.of("Hello", " ", "世界", "123"), split("deepseek-llm", "Hello 世界123"));
        // every regex re-splits every piece: Greek keeps its space, but the Kelvin sign (a cased letter) is also
        // inside the CJK regex's U+0800..U+4E00 range, which cuts it off its space again
        assertEquals(List.of("a", " αβ", " ", "\u212A"), split("deepseek-llm", "a αβ \u212A"));
        // trailing whitespace is its own word
        assertEquals(List.of("a", "  "), split("deepseek-llm", "a  "));
    }
}
