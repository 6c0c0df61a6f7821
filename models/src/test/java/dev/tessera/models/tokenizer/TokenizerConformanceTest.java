package dev.tessera.models.tokenizer;

import dev.tessera.models.TestModels;
import dev.tessera.models.gguf.GgufFile;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * llama.cpp's tokenizer test vectors (tests/test-tokenizer-0.cpp): every {@code .inp} string, tokenized without
 * BOS and without parsing special tokens, must give exactly the ids on the matching {@code .out} line, and must
 * decode back to the input.
 */
class TokenizerConformanceTest {
    private static final String SEPARATOR = "\n__ggml_vocab_test__\n";
    private static final List<String> VOCABS = List.of(
            "llama-spm", "phi-3", "llama-bpe", "qwen2", "gpt-2", "deepseek-llm", "deepseek-coder", "falcon",
            "starcoder", "mpt", "refact");

    @TestFactory
    Stream<DynamicNode> vectors() throws IOException {
        List<DynamicNode> containers = new ArrayList<>();
        for (String vocab : VOCABS) containers.add(container(vocab));
        return containers.stream();
    }

    private static DynamicContainer container(String vocab) throws IOException {
        Path dir = TestModels.dir().resolve("llama.cpp-vocab");
        Path gguf = TestModels.file("llama.cpp-vocab/ggml-vocab-" + vocab + ".gguf");
        List<String> inputs = readInputs(dir.resolve("ggml-vocab-" + vocab + ".gguf.inp"));
        List<int[]> expected = readExpected(dir.resolve("ggml-vocab-" + vocab + ".gguf.out"));
        Tokenizer tokenizer;
        try (GgufFile f = GgufFile.open(gguf)) {
            tokenizer = Tokenizer.fromGguf(f);
        }
        List<DynamicNode> tests = new ArrayList<>();
        tests.add(DynamicTest.dynamicTest("46 tests, one .out line each", () -> {
            assertEquals(46, inputs.size(), vocab + ".inp test count");
            assertEquals(inputs.size(), expected.size(), vocab + ".out line count");
        }));
        for (int i = 0; i < inputs.size(); i++) {
            String input = inputs.get(i);
            int[] want = i < expected.size() ? expected.get(i) : null;
            String label = "line " + (i + 1) + " " + shorten(input);
            tests.add(DynamicTest.dynamicTest("encode " + label, () -> {
                int[] got = tokenizer.encode(input, false, false);
                assertArrayEquals(want, got, () -> vocab + " '" + input + "': expected " + Arrays.toString(want) + ", got " + Arrays.toString(got));
            }));
            // llama.cpp's detokenizer also cleans spaces before punctuation for some vocabularies; ours does not,
            // so every vector here round-trips (SPM through byte fallback, byte-level BPE by construction).
            tests.add(DynamicTest.dynamicTest("round-trip " + label, () ->
                    assertEquals(input, tokenizer.decode(tokenizer.encode(input, false, false)), vocab)));
        }
        return DynamicContainer.dynamicContainer(vocab, tests);
    }

    static List<String> readInputs(Path inp) throws IOException {
        String content = Files.readString(inp, StandardCharsets.UTF_8);
        // a trailing separator ends the last test instead of starting an empty one
        if (content.endsWith(SEPARATOR)) content = content.substring(0, content.length() - SEPARATOR.length());
        return List.of(content.split(SEPARATOR, -1));
    }

    static List<int[]> readExpected(Path out) throws IOException {
        List<int[]> lines = new ArrayList<>();
        for (String line : Files.readAllLines(out, StandardCharsets.UTF_8)) {
            String s = line.strip();
            lines.add(s.isEmpty() ? new int[0] : Arrays.stream(s.split("\\s+")).mapToInt(Integer::parseInt).toArray());
        }
        return lines;
    }

    private static String shorten(String s) {
        String visible = s.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r");
        return "'" + (visible.length() > 40 ? visible.substring(0, 40) + "…" : visible) + "'";
    }
}
