package dev.tessera.models.tokenizer;

import dev.tessera.models.TestModels;
import dev.tessera.models.gguf.GgufArray;
import dev.tessera.models.gguf.GgufException;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufValue;
import dev.tessera.models.gguf.GgufWriter;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Byte-level BPE on the Llama 3 vocabulary, plus the metadata errors of {@link Tokenizer#fromGguf}. */
class ByteLevelBpeTokenizerTest {
    private static Tokenizer llama3;

    @BeforeAll
    static void load() {
        llama3 = open("llama.cpp-vocab/ggml-vocab-llama-bpe.gguf");
    }

    private static Tokenizer open(String relative) {
        try (GgufFile f = GgufFile.open(TestModels.file(relative))) {
            return Tokenizer.fromGguf(f);
        }
    }

    @Test
    void llama3VocabularyFacts() {
        assertInstanceOf(ByteLevelBpeTokenizer.class, llama3);
        assertEquals("llama-bpe", ((ByteLevelBpeTokenizer) llama3).preTokenizerName());
        assertEquals(128256, llama3.vocabSize());
        assertEquals(128000, llama3.bosId());
        assertEquals(128001, llama3.eosId());
        assertTrue(llama3.addBos()); // the llama-bpe pre-tokenizer implies add_bos in llama.cpp
        assertFalse(llama3.addSpacePrefix());
        int eot = llama3.tokenId("<|eot_id|>");
        assertEquals(128009, eot);
        assertEquals(eot, llama3.eotId());
        assertTrue(llama3.isEndOfGeneration(128001));
        assertTrue(llama3.isEndOfGeneration(eot));
        assertFalse(llama3.isEndOfGeneration(128000));
        assertFalse(llama3.isEndOfGeneration(128006)); // <|start_header_id|>
        assertEquals("ĠHello", llama3.piece(llama3.encode(" Hello", false, false)[0]));
    }

    @Test
    void bosIsAddedWhenAsked() {
        int[] plain = llama3.encode("Hello world", false, false);
        int[] withBos = llama3.encode("Hello world", true, false);
        assertEquals(plain.length + 1, withBos.length);
        assertEquals(128000, withBos[0]);
        assertArrayEquals(plain, Arrays.copyOfRange(withBos, 1, withBos.length));
        assertEquals("Hello world", llama3.decode(withBos)); // BOS decodes to nothing
    }

    @Test
    void chatMarkersParseOnlyWhenAsked() {
        String text = "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>";
        int[] parsed = llama3.encode(text, false, true);
        assertEquals(128006, parsed[0]);
        assertEquals(128007, parsed[2]);
        assertEquals(128009, parsed[parsed.length - 1]);
        assertEquals("user", llama3.decode(new int[] {parsed[1]}));
        int[] plain = llama3.encode(text, false, false);
        assertTrue(Arrays.stream(plain).allMatch(id -> id < 128000), Arrays.toString(plain));
        assertEquals(text, llama3.decode(plain));
        assertEquals("user\n\nHi", llama3.decode(parsed));
        assertEquals("<|eot_id|>", new String(llama3.tokenBytes(128009, true)));
    }

    @Test
    void longInputsRoundTrip() {
        // 200k characters of one repeated word, and one 200k-symbol word (quadratic merging would not finish)
        String words = "tokenizer ".repeat(20_000);
        assertEquals(words, llama3.decode(llama3.encode(words, false, false)));
        String run = "!".repeat(200_000);
        assertEquals(run, llama3.decode(llama3.encode(run, false, false)));
    }

    @Test
    void mptUserDefinedSpaceRunsAreMatchedWithoutParseSpecial() {
        Tokenizer mpt = open("llama.cpp-vocab/ggml-vocab-mpt.gguf");
        int spaces24 = mpt.tokenId(" ".repeat(24));
        assertTrue(spaces24 > 0);
        int[] ids = mpt.encode("a" + " ".repeat(24) + "b", false, false);
        assertTrue(Arrays.stream(ids).anyMatch(id -> id == spaces24), Arrays.toString(ids));
        assertEquals("a" + " ".repeat(24) + "b", mpt.decode(ids));
    }

    @Test
    void unsupportedTokenizerModelFails() {
        GgufException e = assertThrows(GgufException.class, () -> open("llama.cpp-vocab/ggml-vocab-bert-bge.gguf"));
        assertEquals("ggml-vocab-bert-bge.gguf: tokenizer.ggml.model = 'bert' is not supported, expected 'llama' or 'gpt2'", e.getMessage());
    }

    @Test
    void unsupportedPreTokenizerFails() {
        GgufException e = assertThrows(GgufException.class, () -> open("llama.cpp-vocab/ggml-vocab-qwen35.gguf"));
        assertEquals("ggml-vocab-qwen35.gguf: tokenizer.ggml.pre = 'qwen35' is not a supported pre-tokenizer", e.getMessage());
    }

    @Test
    void missingTokensAndMergesFail(@TempDir Path dir) {
        Path noTokens = dir.resolve("no-tokens.gguf");
        new GgufWriter().metadata("tokenizer.ggml.model", GgufValue.ofString("llama")).write(noTokens, (info, dst) -> {});
        try (GgufFile f = GgufFile.open(noTokens)) {
            GgufException e = assertThrows(GgufException.class, () -> Tokenizer.fromGguf(f));
            assertEquals("no-tokens.gguf: missing metadata key tokenizer.ggml.tokens (string array)", e.getMessage());
        }

        Path noMerges = dir.resolve("no-merges.gguf");
        new GgufWriter()
                .metadata("tokenizer.ggml.model", GgufValue.ofString("gpt2"))
                .metadata("tokenizer.ggml.pre", GgufValue.ofString("gpt-2"))
                .metadata("tokenizer.ggml.tokens", GgufValue.ofArray(GgufArray.ofStrings(new String[] {"a", "b"})))
                .write(noMerges, (info, dst) -> {});
        try (GgufFile f = GgufFile.open(noMerges)) {
            GgufException e = assertThrows(GgufException.class, () -> Tokenizer.fromGguf(f));
            assertEquals("no-merges.gguf: missing metadata key tokenizer.ggml.merges (string array) for a gpt2 tokenizer", e.getMessage());
        }

        Path noModel = dir.resolve("no-model.gguf");
        new GgufWriter().metadata("general.name", GgufValue.ofString("x")).write(noModel, (info, dst) -> {});
        try (GgufFile f = GgufFile.open(noModel)) {
            GgufException e = assertThrows(GgufException.class, () -> Tokenizer.fromGguf(f));
            assertEquals("no-model.gguf: missing metadata key tokenizer.ggml.model", e.getMessage());
        }
    }

    @Test
    void tinyHandMadeVocabularyMergesByRank(@TempDir Path dir) {
        // merges: "a b" (rank 0) before "b c" (rank 1), so "abc" → "ab" + "c", never "a" + "bc"
        Path file = dir.resolve("tiny.gguf");
        new GgufWriter()
                .metadata("tokenizer.ggml.model", GgufValue.ofString("gpt2"))
                .metadata("tokenizer.ggml.pre", GgufValue.ofString("gpt-2"))
                .metadata("tokenizer.ggml.tokens", GgufValue.ofArray(GgufArray.ofStrings(new String[] {"a", "b", "c", "ab", "bc", "<eos>"})))
                .metadata("tokenizer.ggml.token_type", GgufValue.ofArray(GgufArray.ofInt32s(new int[] {1, 1, 1, 1, 1, 3})))
                .metadata("tokenizer.ggml.merges", GgufValue.ofArray(GgufArray.ofStrings(new String[] {"a b", "b c"})))
                .metadata("tokenizer.ggml.eos_token_id", GgufValue.ofUint32(5))
                .metadata("tokenizer.ggml.bos_token_id", GgufValue.ofUint32(4294967295L)) // out of range: default kept
                .write(file, (info, dst) -> {});
        try (GgufFile f = GgufFile.open(file)) {
            Tokenizer t = Tokenizer.fromGguf(f);
            assertArrayEquals(new int[] {3, 2}, t.encode("abc", false, false));
            assertArrayEquals(new int[] {1, 4}, t.encode("bbc", false, false));
            assertEquals(5, t.eosId());
            assertEquals(-1, t.bosId(), "BPE's default BOS id 11 does not exist in a 6-token vocabulary");
            assertTrue(t.isEndOfGeneration(5));
            assertFalse(t.addBos());
        }
    }
}
