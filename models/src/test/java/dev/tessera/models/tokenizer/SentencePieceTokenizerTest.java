package dev.tessera.models.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.models.TestModels;
import dev.tessera.models.gguf.GgufFile;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.Arrays;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The 512-token stories260K vocabulary (SentencePiece BPE, byte fallback) and the phi-3 special tokens. */
class SentencePieceTokenizerTest {
    private static Tokenizer stories;

    @BeforeAll
    static void load() {
        try (GgufFile f = GgufFile.open(TestModels.file("stories260K.gguf"))) {
            stories = Tokenizer.fromGguf(f);
        }
    }

    @Test
    void vocabularyFacts() {
        assertInstanceOf(SentencePieceTokenizer.class, stories);
        assertEquals(512, stories.vocabSize());
        assertEquals(1, stories.bosId());
        assertEquals(2, stories.eosId());
        assertEquals(0, stories.unknownId());
        assertTrue(stories.addBos());
        assertFalse(stories.addEos());
        assertTrue(stories.addSpacePrefix());
        assertTrue(stories.isEndOfGeneration(2));
        assertFalse(stories.isEndOfGeneration(1));
        assertFalse(stories.isEndOfGeneration(403));
        assertEquals("<0x0A>", stories.piece(13));
        assertEquals(13, stories.tokenId("<0x0A>"));
        assertEquals(-1, stories.tokenId("no such piece"));
    }

    @Test
    void onceUponATime() {
        assertArrayEquals(new int[] {1, 403, 407, 261, 378}, stories.encode("Once upon a time", true, false));
        assertArrayEquals(new int[] {403, 407, 261, 378}, stories.encode("Once upon a time", false, false));
        assertEquals("▁Once", stories.piece(403));
        assertEquals("Once upon a time", stories.decode(new int[] {403, 407, 261, 378}));
    }

    @Test
    void referencePromptsAndGreedyText() throws IOException {
        JsonNode ref = new ObjectMapper().readTree(TestModels.file("stories260K.reference.json").toFile());
        int numCases = 0;
        for (JsonNode c : ref.get("cases")) {
            String prompt = c.get("prompt").asText();
            int[] promptIds = ints(c.get("prompt_token_ids"));
            assertArrayEquals(promptIds, stories.encode(prompt, true, false), () -> "prompt '" + prompt + "'");
            // llama2.c prints the prompt and the generated text with the space after BOS stripped
            int[] all = IntStream.concat(Arrays.stream(promptIds), Arrays.stream(ints(c.get("greedy_generated_token_ids")))).toArray();
            StreamingDecoder decoder = new StreamingDecoder(stories, true);
            StringBuilder text = new StringBuilder();
            for (int id : all) text.append(decoder.feed(id));
            text.append(decoder.flush());
            assertEquals(c.get("greedy_text").asText(), text.toString(), () -> "greedy text for prompt '" + prompt + "'");
            numCases++;
        }
        assertEquals(3, numCases);
    }

    @Test
    void unknownCharactersFallBackToBytes() {
        // "▁" is a piece, U+1F600 is not: its four UTF-8 bytes F0 9F 98 80 become <0xF0> <0x9F> <0x98> <0x80> (id = byte + 3)
        int[] ids = stories.encode("😀", false, false);
        assertEquals(5, ids.length, Arrays.toString(ids));
        assertEquals("▁", stories.piece(ids[0]));
        assertArrayEquals(new int[] {0xF0 + 3, 0x9F + 3, 0x98 + 3, 0x80 + 3}, Arrays.copyOfRange(ids, 1, 5));
        assertEquals("😀", stories.decode(ids));
        assertArrayEquals(new byte[] {(byte) 0x9F}, stories.tokenBytes(0x9F + 3));
    }

    @Test
    void emptyTextHasNoTokensButBosWhenAsked() {
        assertArrayEquals(new int[0], stories.encode("", false, false));
        assertArrayEquals(new int[] {1}, stories.encode("", true, false));
    }

    @Test
    void controlTokensParseOnlyWhenAsked() {
        int[] parsed = stories.encode("<s>Once", false, true);
        assertArrayEquals(new int[] {1, 403}, parsed, Arrays.toString(parsed)); // after a special token: space prefix again
        int[] plain = stories.encode("<s>Once", false, false);
        assertFalse(Arrays.stream(plain).anyMatch(id -> id == 1), Arrays.toString(plain));
        assertEquals("<s>Once", stories.decode(plain));
        // control tokens decode to nothing, and as in llama.cpp the leading token (here <s>) uses up the strip
        assertEquals(" Once", stories.decode(parsed));
        assertArrayEquals("<s>".getBytes(), stories.tokenBytes(1, true)); // rendered only when asked
        assertArrayEquals(new byte[0], stories.tokenBytes(1));
    }

    @Test
    void outOfRangeIdIsRejected() {
        assertThrows(IllegalArgumentException.class, () -> stories.tokenBytes(512));
        assertThrows(IllegalArgumentException.class, () -> stories.piece(-1));
    }

    @Test
    void phi3SpecialTokens() {
        Tokenizer phi3;
        try (GgufFile f = GgufFile.open(TestModels.file("llama.cpp-vocab/ggml-vocab-phi-3.gguf"))) {
            phi3 = Tokenizer.fromGguf(f);
        }
        int end = phi3.tokenId("<|end|>");
        int user = phi3.tokenId("<|user|>");
        assertTrue(end > 0 && user > 0);
        assertTrue(phi3.isEndOfGeneration(end));
        assertTrue(phi3.isEndOfGeneration(phi3.eosId()));
        int[] ids = phi3.encode("<|user|>\nHi<|end|>", true, true);
        assertEquals(1, ids[0]);
        assertEquals(user, ids[1]);
        assertEquals(end, ids[ids.length - 1]);
        // Phi-3 special tokens strip the whitespace after them (llama.cpp rstrip), so "\n" is not tokenized
        assertArrayEquals(phi3.encode("<|user|>Hi<|end|>", true, true), ids);
        // "</s>" is a user-defined token in this vocabulary: matched even without parseSpecial
        int[] plain = phi3.encode("a</s>", false, false);
        assertEquals(phi3.tokenId("</s>"), plain[plain.length - 1], Arrays.toString(plain));
    }

    static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }
}
