package dev.tessera.models.tokenizer;

import dev.tessera.models.gguf.GgufFile;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Text ↔ token ids for a GGUF vocabulary, matching llama.cpp ({@code llama_tokenize}, {@code llama_token_to_piece}).
 * Two models are supported: {@code llama} (SentencePiece-style BPE with scores and byte fallback) and {@code gpt2}
 * (byte-level BPE with merge ranks and a pre-tokenizer chosen by {@code tokenizer.ggml.pre}).
 * Instances are immutable and safe to share between threads.
 */
public abstract sealed class Tokenizer permits SentencePieceTokenizer, ByteLevelBpeTokenizer {
    private static final byte[] NO_BYTES = new byte[0];

    final Vocabulary vocab;
    private final SpecialTokenSplitter splitter;

    Tokenizer(Vocabulary vocab) {
        this.vocab = vocab;
        this.splitter = new SpecialTokenSplitter(vocab);
    }

    /** Builds the tokenizer described by the file's {@code tokenizer.ggml.*} metadata; the file may be closed afterwards. */
    public static Tokenizer fromGguf(GgufFile f) {
        String model = f.getString("tokenizer.ggml.model", null);
        if (model == null) throw f.fail("missing metadata key tokenizer.ggml.model");
        return switch (model) {
            case "llama" -> SentencePieceTokenizer.load(f);
            case "gpt2" -> ByteLevelBpeTokenizer.load(f);
            default -> throw f.fail("tokenizer.ggml.model = '" + model + "' is not supported, expected 'llama' or 'gpt2'");
        };
    }

    /**
     * Token ids for {@code text}.
     *
     * @param addSpecial   add BOS (and EOS) where the metadata asks for them, like llama.cpp's {@code add_special}
     * @param parseSpecial turn the texts of control tokens (e.g. {@code <|eot_id|>}) into their ids; without it they
     *                     are tokenized as plain text. User-defined tokens are always matched, as in llama.cpp.
     */
    public int[] encode(String text, boolean addSpecial, boolean parseSpecial) {
        TokenIdList out = new TokenIdList(text.length() / 2 + 4);
        if (addSpecial && vocab.addBos && vocab.bosId != Vocabulary.NO_TOKEN) out.add(vocab.bosId);
        boolean afterSpecial = true; // the start of the text counts as "after a special token"
        for (SpecialTokenSplitter.Fragment f : splitter.split(text, parseSpecial)) {
            if (f.isText()) {
                encodeText(text.substring(f.start(), f.end()), afterSpecial, out);
                afterSpecial = false;
            } else {
                out.add(f.tokenId());
                afterSpecial = true;
            }
        }
        if (addSpecial && vocab.addEos && vocab.eosId != Vocabulary.NO_TOKEN) out.add(vocab.eosId);
        return out.toArray();
    }

    /** Appends the ids of one text fragment that holds no special token. */
    abstract void encodeText(String text, boolean afterSpecial, TokenIdList out);

    /** The decoded bytes of a token that is neither control, unknown nor user-defined. */
    abstract byte[] ordinaryBytes(int id);

    /**
     * The bytes this token contributes to decoded text: control and unknown tokens contribute nothing.
     * The result may be an incomplete UTF-8 sequence (byte tokens, split characters).
     */
    public byte[] tokenBytes(int id) {
        return tokenBytes(id, false);
    }

    /** Like {@link #tokenBytes(int)}; with {@code special} set, control and unknown tokens render as their text. */
    public byte[] tokenBytes(int id, boolean special) {
        vocab.checkId(id);
        return switch (vocab.types[id]) {
            case Vocabulary.TYPE_CONTROL, Vocabulary.TYPE_UNKNOWN ->
                    special ? vocab.texts[id].getBytes(StandardCharsets.UTF_8) : NO_BYTES;
            case Vocabulary.TYPE_USER_DEFINED -> vocab.texts[id].getBytes(StandardCharsets.UTF_8);
            default -> ordinaryBytes(id);
        };
    }

    /**
     * Text of the ids, as llama.cpp's {@code llama_detokenize} with remove_special and unparse_special off: control
     * tokens vanish, and when the vocabulary adds a space prefix the first token loses one leading space. Unlike
     * llama.cpp, no clean-up of spaces before punctuation is done, so byte-level BPE decoding is exact.
     * Invalid UTF-8 becomes U+FFFD.
     */
    public String decode(int[] ids) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(ids.length * 4);
        for (int i = 0; i < ids.length; i++) {
            byte[] b = tokenBytes(ids[i]);
            int from = i == 0 && vocab.addSpacePrefix && b.length > 0 && b[0] == ' ' ? 1 : 0;
            bytes.write(b, from, b.length - from);
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }

    public int vocabSize() { return vocab.size; }

    /** BOS id, or -1 when the vocabulary has none. */
    public int bosId() { return vocab.bosId; }

    /** EOS id, or -1 when the vocabulary has none. */
    public int eosId() { return vocab.eosId; }

    /** End-of-turn id ({@code <|eot_id|>}, {@code <|im_end|>}, ...), or -1. */
    public int eotId() { return vocab.eotId; }

    /** End-of-message id ({@code <|eom_id|>}), or -1. */
    public int eomId() { return vocab.eomId; }

    /** Unknown-token id, or -1. */
    public int unknownId() { return vocab.unknownId; }

    /** Padding id, or -1. */
    public int paddingId() { return vocab.paddingId; }

    /** True for EOS, EOT, EOM and the control tokens llama.cpp treats as end of generation. */
    public boolean isEndOfGeneration(int id) { return vocab.isEndOfGeneration(id); }

    /** Whether {@code encode(..., addSpecial=true, ...)} starts with BOS. */
    public boolean addBos() { return vocab.addBos; }

    /** Whether {@code encode(..., addSpecial=true, ...)} ends with EOS. */
    public boolean addEos() { return vocab.addEos; }

    /** Whether text fragments get a leading space before tokenization (SentencePiece {@code add_dummy_prefix}). */
    public boolean addSpacePrefix() { return vocab.addSpacePrefix; }

    /** True for control tokens (BOS, EOS, chat markers), which decode to nothing. */
    public boolean isControl(int id) {
        vocab.checkId(id);
        return vocab.types[id] == Vocabulary.TYPE_CONTROL;
    }

    /** The token's text as stored in the vocabulary, e.g. {@code ▁Once} or {@code Ġworld}. */
    public String piece(int id) {
        vocab.checkId(id);
        return vocab.texts[id];
    }

    /** The id of the token whose stored text is exactly {@code piece}, or -1. */
    public int tokenId(String piece) {
        return vocab.id(piece);
    }
}
