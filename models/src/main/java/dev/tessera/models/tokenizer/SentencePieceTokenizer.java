package dev.tessera.models.tokenizer;

import dev.tessera.models.gguf.GgufFile;

import java.nio.charset.StandardCharsets;
import java.util.PriorityQueue;

/**
 * SentencePiece-style BPE ({@code tokenizer.ggml.model = llama}), as llama.cpp's {@code llm_tokenizer_spm}:
 * spaces become U+2581, each character starts as one symbol, and the adjacent pair whose concatenation is a
 * vocabulary token with the highest score is merged first (ties: leftmost) until no pair is a token. Symbols that
 * are not tokens fall back to byte tokens {@code <0xXX>}.
 */
final class SentencePieceTokenizer extends Tokenizer {
    static final char SPACE_MARK = '\u2581';

    /** Token id for each byte value (the {@code <0xXX>} tokens). */
    private final int[] byteTokens = new int[256];

    private SentencePieceTokenizer(Vocabulary vocab) {
        super(vocab);
        for (int b = 0; b < 256; b++) {
            int id = vocab.id(String.format("<0x%02X>", b));
            if (id == Vocabulary.NO_TOKEN && b < 0x80) id = vocab.id(String.valueOf((char) b));
            byteTokens[b] = id != Vocabulary.NO_TOKEN ? id : vocab.unknownId;
        }
    }

    static SentencePieceTokenizer load(GgufFile f) {
        // llama.cpp defaults for SPM: <s>=1, </s>=2, <unk>=0, add BOS, add a space prefix
        return new SentencePieceTokenizer(Vocabulary.load(f, new Vocabulary.Defaults(1, 2, 0, true, true)));
    }

    private record Bigram(int left, int right, float score, int length) {}

    @Override
    void encodeText(String fragment, boolean afterSpecial, TokenIdList out) {
        String text = (vocab.addSpacePrefix && afterSpecial ? " " : "") + fragment;
        text = text.replace(' ', SPACE_MARK);

        int numSymbols = text.codePointCount(0, text.length());
        int[] start = new int[numSymbols];  // in chars of text
        int[] length = new int[numSymbols]; // in chars; 0 once merged into the left neighbour
        int[] prev = new int[numSymbols];
        int[] next = new int[numSymbols];
        for (int i = 0, offset = 0; i < numSymbols; i++) {
            start[i] = offset;
            length[i] = Character.charCount(text.codePointAt(offset));
            offset += length[i];
            prev[i] = i - 1;
            next[i] = i + 1 < numSymbols ? i + 1 : -1;
        }

        // highest score first; for equal scores the leftmost pair
        PriorityQueue<Bigram> queue = new PriorityQueue<>(Math.max(1, numSymbols), (a, b) ->
                a.score() != b.score() ? Float.compare(b.score(), a.score()) : Integer.compare(a.left(), b.left()));
        for (int i = 1; i < numSymbols; i++) addBigram(text, start, length, i - 1, i, queue);

        while (!queue.isEmpty()) {
            Bigram bigram = queue.poll();
            int left = bigram.left();
            int right = bigram.right();
            // stale: one side was merged away, or the right side grew since this pair was queued
            if (length[left] == 0 || length[right] == 0 || length[left] + length[right] != bigram.length()) continue;
            length[left] += length[right];
            length[right] = 0;
            next[left] = next[right];
            if (next[right] >= 0) prev[next[right]] = left;
            addBigram(text, start, length, prev[left], left, queue);
            addBigram(text, start, length, left, next[left], queue);
        }

        for (int i = numSymbols > 0 ? 0 : -1; i != -1; i = next[i]) {
            String symbol = text.substring(start[i], start[i] + length[i]);
            int id = vocab.id(symbol);
            if (id != Vocabulary.NO_TOKEN) {
                out.add(id);
            } else {
                for (byte b : symbol.getBytes(StandardCharsets.UTF_8)) out.add(byteTokens[b & 0xFF]);
            }
        }
    }

    private void addBigram(String text, int[] start, int[] length, int left, int right, PriorityQueue<Bigram> queue) {
        if (left < 0 || right < 0) return;
        int merged = length[left] + length[right];
        int id = vocab.id(text.substring(start[left], start[left] + merged));
        if (id == Vocabulary.NO_TOKEN) return;
        queue.add(new Bigram(left, right, vocab.scores[id], merged));
    }

    @Override
    byte[] ordinaryBytes(int id) {
        return switch (vocab.types[id]) {
            case Vocabulary.TYPE_NORMAL -> vocab.texts[id].replace(SPACE_MARK, ' ').getBytes(StandardCharsets.UTF_8);
            case Vocabulary.TYPE_BYTE -> new byte[] {(byte) byteValue(id)};
            // llama.cpp renders unused and undefined tokens like control tokens: as nothing
            default -> new byte[0];
        };
    }

    /** The byte of a {@code <0xXX>} token. */
    private int byteValue(int id) {
        String text = vocab.texts[id];
        if (text.length() == 6 && text.startsWith("<0x") && text.endsWith(">")) {
            try {
                return Integer.parseInt(text.substring(3, 5), 16);
            } catch (NumberFormatException e) {
                // fall through to the error below
            }
        }
        throw new IllegalStateException("byte token " + id + " has text '" + text + "', expected <0xXX>");
    }
}
