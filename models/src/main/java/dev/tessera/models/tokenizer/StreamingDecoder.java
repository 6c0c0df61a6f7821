package dev.tessera.models.tokenizer;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Turns generated token ids into text one token at a time. A character can be split over several tokens (byte
 * fallback tokens, byte-level BPE), so bytes of an incomplete UTF-8 sequence are held back until it completes;
 * {@link #feed} therefore only ever returns whole characters. Malformed bytes become U+FFFD as soon as they are
 * known to be malformed, and {@link #flush} turns a still-incomplete tail into U+FFFD. Not thread-safe: one per
 * sequence.
 */
public final class StreamingDecoder {
    private final Tokenizer tokenizer;
    private final boolean renderSpecial;
    private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPLACE)
            .onUnmappableCharacter(CodingErrorAction.REPLACE);
    private boolean stripLeadingSpace;
    private byte[] pending = new byte[16];
    private int numPending;

    /** A decoder that emits every piece unchanged; control tokens emit nothing. */
    public StreamingDecoder(Tokenizer tokenizer) {
        this(tokenizer, false, false);
    }

    /** See {@link #StreamingDecoder(Tokenizer, boolean, boolean)}; control tokens emit nothing. */
    public StreamingDecoder(Tokenizer tokenizer, boolean stripLeadingSpace) {
        this(tokenizer, stripLeadingSpace, false);
    }

    /**
     * @param stripLeadingSpace drop one leading space from the first non-empty piece, as llama2.c and llama.cpp do
     *                          for SentencePiece vocabularies right after BOS (the space is the tokenizer's prefix,
     *                          not part of the text)
     * @param renderSpecial     render control tokens as their text (e.g. {@code <|eot_id|>}) instead of nothing
     */
    public StreamingDecoder(Tokenizer tokenizer, boolean stripLeadingSpace, boolean renderSpecial) {
        this.tokenizer = tokenizer;
        this.stripLeadingSpace = stripLeadingSpace;
        this.renderSpecial = renderSpecial;
    }

    /** Adds one token; returns the text that is now complete (possibly empty). */
    public String feed(int tokenId) {
        byte[] piece = tokenizer.tokenBytes(tokenId, renderSpecial);
        int from = 0;
        if (stripLeadingSpace && piece.length > 0) {
            if (piece[0] == ' ') from = 1;
            stripLeadingSpace = false;
        }
        int n = piece.length - from;
        if (numPending + n > pending.length) pending = Arrays.copyOf(pending, Math.max(pending.length * 2, numPending + n));
        System.arraycopy(piece, from, pending, numPending, n);
        numPending += n;
        return drain(false);
    }

    /** Ends the stream: returns what is left, with an incomplete trailing sequence as U+FFFD, and resets. */
    public String flush() {
        return drain(true);
    }

    /** Bytes held back because they do not yet form a whole character (0 to 3). */
    public int pendingBytes() {
        return numPending;
    }

    private String drain(boolean endOfInput) {
        ByteBuffer in = ByteBuffer.wrap(pending, 0, numPending);
        // one char per byte at most: 1-3 byte sequences give one char, 4-byte ones two, malformed bytes one each
        CharBuffer out = CharBuffer.allocate(numPending + 1);
        CoderResult result = utf8.decode(in, out, endOfInput);
        if (result.isOverflow()) throw new IllegalStateException("UTF-8 decode overflowed a buffer of " + out.capacity() + " chars");
        if (endOfInput) {
            utf8.flush(out);
            utf8.reset();
        }
        int left = in.remaining();
        System.arraycopy(pending, in.position(), pending, 0, left);
        numPending = left;
        return out.flip().toString();
    }
}
