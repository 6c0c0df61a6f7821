package dev.tessera.models.tokenizer;

import dev.tessera.models.gguf.GgufFile;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The token table of a GGUF file: texts, scores, types, special ids and flags, read the way llama.cpp's
 * {@code llama_vocab::impl::load} reads them (defaults, overrides, end-of-generation detection).
 */
final class Vocabulary {
    static final int NO_TOKEN = -1;

    // tokenizer.ggml.token_type values (gguf-py TokenType, llama.cpp llama_token_type)
    static final int TYPE_UNDEFINED = 0;
    static final int TYPE_NORMAL = 1;
    static final int TYPE_UNKNOWN = 2;
    static final int TYPE_CONTROL = 3;
    static final int TYPE_USER_DEFINED = 4;
    static final int TYPE_UNUSED = 5;
    static final int TYPE_BYTE = 6;

    /** Texts that llama.cpp takes as the end-of-turn token when tokenizer.ggml.eot_token_id is absent. */
    private static final List<String> EOT_TEXTS = List.of(
            "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "_<EOT>",
            "<｜end▁of▁sentence｜>", "<end_of_utterance>");

    /** Texts whose tokens end generation (llama.cpp special_eog_ids); they are forced to control tokens. */
    private static final Set<String> EOG_TEXTS = Set.of(
            "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
            "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>");

    /** What llama.cpp assumes for a tokenizer model before reading the optional metadata keys. */
    record Defaults(int bosId, int eosId, int unknownId, boolean addBos, boolean addSpacePrefix) {}

    final int size;
    final String[] texts;
    final float[] scores;
    final int[] types;
    private final Map<String, Integer> ids;
    final int bosId;
    final int eosId;
    final int eotId;
    final int eomId;
    final int unknownId;
    final int paddingId;
    final boolean addBos;
    final boolean addEos;
    final boolean addSpacePrefix;
    /** Control, user-defined and unknown tokens, longest UTF-8 text first (llama.cpp cache_special_tokens). */
    final int[] specialIds;
    final BitSet leftStrip;
    final BitSet rightStrip;
    private final BitSet endOfGeneration;

    private Vocabulary(GgufFile f, Defaults defaults) {
        String[] tokens = f.getStringArray("tokenizer.ggml.tokens");
        if (tokens == null || tokens.length == 0) throw f.fail("missing metadata key tokenizer.ggml.tokens (string array)");
        size = tokens.length;
        texts = new String[size];
        for (int i = 0; i < size; i++) {
            // llama.cpp renames empty tokens so that every token has a distinct, non-empty text
            texts[i] = tokens[i].isEmpty() ? "[EMPTY_" + i + "]" : tokens[i];
        }
        float[] s = f.getFloatArray("tokenizer.ggml.scores");
        if (s != null && s.length != size) throw f.fail("tokenizer.ggml.scores has " + s.length + " entries, expected " + size);
        scores = s != null ? s : new float[size];
        int[] t = f.getIntArray("tokenizer.ggml.token_type");
        if (t != null && t.length != size) throw f.fail("tokenizer.ggml.token_type has " + t.length + " entries, expected " + size);
        types = new int[size];
        for (int i = 0; i < size; i++) {
            int type = t == null ? TYPE_NORMAL : t[i];
            types[i] = type >= TYPE_UNDEFINED && type <= TYPE_BYTE ? type : TYPE_UNDEFINED;
        }

        ids = new HashMap<>(size * 2);
        for (int i = 0; i < size; i++) ids.put(texts[i], i); // a duplicated text maps to its last id, as in llama.cpp

        bosId = specialId(f, "tokenizer.ggml.bos_token_id", defaults.bosId());
        eosId = specialId(f, "tokenizer.ggml.eos_token_id", defaults.eosId());
        unknownId = specialId(f, "tokenizer.ggml.unknown_token_id", defaults.unknownId());
        paddingId = specialId(f, "tokenizer.ggml.padding_token_id", NO_TOKEN);
        int eot = specialId(f, "tokenizer.ggml.eot_token_id", NO_TOKEN);
        int eom = specialId(f, "tokenizer.ggml.eom_token_id", NO_TOKEN);
        addBos = f.getBool("tokenizer.ggml.add_bos_token", defaults.addBos());
        addEos = f.getBool("tokenizer.ggml.add_eos_token", false);
        addSpacePrefix = f.getBool("tokenizer.ggml.add_space_prefix", defaults.addSpacePrefix());

        if (eot == NO_TOKEN) {
            for (int i = 0; i < size && eot == NO_TOKEN; i++) {
                if (EOT_TEXTS.contains(texts[i])) eot = i;
            }
            if (eot != NO_TOKEN) types[eot] = TYPE_CONTROL;
        }
        if (eom == NO_TOKEN) {
            Integer id = ids.get("<|eom_id|>");
            if (id != null) {
                eom = id;
                types[eom] = TYPE_CONTROL;
            }
        }
        eotId = eot;
        eomId = eom;

        endOfGeneration = new BitSet(size);
        for (int i = 0; i < size; i++) {
            if (EOG_TEXTS.contains(texts[i])) {
                endOfGeneration.set(i);
                types[i] = TYPE_CONTROL;
            }
        }
        for (int id : new int[] {eosId, eotId, eomId}) {
            if (id != NO_TOKEN) endOfGeneration.set(id);
        }

        List<Integer> special = new ArrayList<>();
        for (int i = 0; i < size; i++) {
            if (types[i] == TYPE_CONTROL || types[i] == TYPE_USER_DEFINED || types[i] == TYPE_UNKNOWN) special.add(i);
        }
        int[] byteLength = new int[size];
        for (int id : special) byteLength[id] = texts[id].getBytes(StandardCharsets.UTF_8).length;
        special.sort((a, b) -> byteLength[a] != byteLength[b] ? Integer.compare(byteLength[b], byteLength[a]) : Integer.compare(a, b));
        specialIds = special.stream().mapToInt(Integer::intValue).toArray();

        leftStrip = new BitSet(size);
        rightStrip = new BitSet(size);
        // llama.cpp sets these per-token attributes by model name (they are not stored in GGUF): Phi-3 strips
        // whitespace to the right of its special tokens when they are parsed from text.
        String name = f.getString("general.name", "").toLowerCase(Locale.ROOT);
        if (name.contains("phi-3") || name.contains("phi3")) {
            for (int id : specialIds) rightStrip.set(id);
            setIfPresent(rightStrip, "</s>", true);
            for (String text : List.of("<unk>", "<s>", "<|endoftext|>")) setIfPresent(rightStrip, text, false);
        }
    }

    static Vocabulary load(GgufFile f, Defaults defaults) {
        return new Vocabulary(f, defaults);
    }

    private void setIfPresent(BitSet set, String text, boolean value) {
        Integer id = ids.get(text);
        if (id != null) set.set(id, value);
    }

    /**
     * An id from metadata; an absent or out-of-range value keeps the default, as llama.cpp does. A default that is
     * itself out of range (BPE's 11 in a tiny vocabulary) means no such token.
     */
    private int specialId(GgufFile f, String key, int fallback) {
        long v = f.getLong(key, -1);
        if (v >= 0 && v < size) return (int) v;
        return fallback < size ? fallback : NO_TOKEN;
    }

    /** The id of a token with exactly this text, or {@link #NO_TOKEN}. */
    int id(String text) {
        Integer id = ids.get(text);
        return id == null ? NO_TOKEN : id;
    }

    boolean isEndOfGeneration(int id) {
        return id >= 0 && endOfGeneration.get(id);
    }

    void checkId(int id) {
        if (id < 0 || id >= size) throw new IllegalArgumentException("token id " + id + " is out of range [0, " + size + ")");
    }
}
