package dev.tessera.models.tokenizer;

import dev.tessera.models.TestModels;
import dev.tessera.models.gguf.GgufFile;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StreamingDecoderTest {
    private static Tokenizer stories;
    private static Tokenizer gpt2;

    @BeforeAll
    static void load() {
        try (GgufFile f = GgufFile.open(TestModels.file("stories260K.gguf"))) {
            stories = Tokenizer.fromGguf(f);
        }
        try (GgufFile f = GgufFile.open(TestModels.file("llama.cpp-vocab/ggml-vocab-gpt-2.gguf"))) {
            gpt2 = Tokenizer.fromGguf(f);
        }
    }

    /** Feeds ids one by one; every chunk must be well-formed text (no U+FFFD, no lone surrogate). */
    private static List<String> stream(StreamingDecoder decoder, int[] ids) {
        List<String> chunks = new ArrayList<>();
        for (int id : ids) {
            String chunk = decoder.feed(id);
            assertWellFormed(chunk);
            chunks.add(chunk);
        }
        String rest = decoder.flush();
        assertWellFormed(rest);
        chunks.add(rest);
        return chunks;
    }

    private static void assertWellFormed(String s) {
        assertFalse(s.contains("\uFFFD"), () -> "replacement character in '" + s + "'");
        assertEquals(s, new String(s.getBytes(StandardCharsets.UTF_8), StandardCharsets.UTF_8), "lone surrogate");
    }

    @Test
    void byteFallbackCharactersAreHeldUntilComplete() {
        String text = "Hi 😀 and 你好!";
        int[] ids = stories.encode(text, false, false);
        StreamingDecoder decoder = new StreamingDecoder(stories, true);
        List<String> chunks = stream(decoder, ids);
        assertEquals(text, String.join("", chunks));
        // the emoji arrives as four byte tokens: the first three emit nothing, the fourth emits the whole character
        int first = indexOf(ids, 0xF0 + 3);
        assertTrue(first > 0, Arrays.toString(ids));
        assertEquals("", chunks.get(first));
        assertEquals("", chunks.get(first + 1));
        assertEquals("", chunks.get(first + 2));
        assertEquals("😀", chunks.get(first + 3));
    }

    @Test
    void pendingBytesAreCounted() {
        StreamingDecoder decoder = new StreamingDecoder(stories);
        assertEquals("", decoder.feed(0xE4 + 3)); // first byte of 你 (E4 BD A0)
        assertEquals(1, decoder.pendingBytes());
        assertEquals("", decoder.feed(0xBD + 3));
        assertEquals(2, decoder.pendingBytes());
        assertEquals("你", decoder.feed(0xA0 + 3));
        assertEquals(0, decoder.pendingBytes());
        assertEquals("", decoder.flush());
    }

    @Test
    void flushTurnsAnIncompleteTailIntoReplacementCharacter() {
        StreamingDecoder decoder = new StreamingDecoder(stories);
        assertEquals("", decoder.feed(0xF0 + 3));
        assertEquals("", decoder.feed(0x9F + 3));
        assertEquals("\uFFFD", decoder.flush());
        assertEquals(0, decoder.pendingBytes());
        // the decoder is usable again after a flush
        assertEquals("A", decoder.feed('A' + 3));
    }

    @Test
    void malformedBytesDoNotBlockLaterText() {
        StreamingDecoder decoder = new StreamingDecoder(stories);
        assertEquals("", decoder.feed(0xE4 + 3));
        // 'A' cannot continue E4: the E4 is malformed and is replaced right away
        assertEquals("\uFFFDA", decoder.feed('A' + 3));
        assertEquals("\uFFFD", decoder.feed(0x80 + 3)); // a lone continuation byte
    }

    @Test
    void leadingSpaceIsStrippedOnceWhenAsked() {
        int[] ids = stories.encode("Once upon a time", true, false);
        assertEquals("Once upon a time", String.join("", stream(new StreamingDecoder(stories, true), ids)));
        assertEquals(" Once upon a time", String.join("", stream(new StreamingDecoder(stories), ids)));
        // only the first non-empty piece loses its space
        int[] twice = stories.encode(" x x", false, false);
        assertEquals(" x x", String.join("", stream(new StreamingDecoder(stories, true), twice)));
    }

    @Test
    void controlTokensRenderOnlyWhenAsked() {
        int[] ids = {1, 403, 2};
        assertEquals(" Once", String.join("", stream(new StreamingDecoder(stories), ids)));
        assertEquals("<s> Once</s>", String.join("", stream(new StreamingDecoder(stories, false, true), ids)));
    }

    @Test
    void byteLevelBpeSplitsCharactersAcrossTokens() {
        String text = "🦙 llamas and 龍";
        int[] ids = gpt2.encode(text, false, false);
        List<String> chunks = stream(new StreamingDecoder(gpt2), ids);
        assertEquals(text, String.join("", chunks));
        // GPT-2 has no token for 🦙 or 龍, so some token carries only part of a character and emits nothing
        assertTrue(chunks.subList(0, ids.length).stream().anyMatch(String::isEmpty), () -> chunks + " " + Arrays.toString(ids));
    }

    private static int indexOf(int[] ids, int id) {
        for (int i = 0; i < ids.length; i++) if (ids[i] == id) return i;
        return -1;
    }
}
