package dev.tessera.models.tokenizer;

import dev.tessera.models.gguf.GgufFile;

import java.util.HashMap;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * Byte-level BPE ({@code tokenizer.ggml.model = gpt2}), as llama.cpp's {@code llm_tokenizer_bpe}: the pre-tokenizer
 * splits the text into words, each word's UTF-8 bytes are written with {@link ByteToUnicode}, and adjacent symbols
 * are merged lowest merge rank first (ties: leftmost) until no adjacent pair has a rank.
 */
final class ByteLevelBpeTokenizer extends Tokenizer {
    private final PreTokenizer preTokenizer;
    /**
     * Rank of each merge rule, keyed by its GGUF text "left right". Symbols never contain a raw space (bytes are
     * mapped), so looking up {@code left + " " + right} finds exactly llama.cpp's (left, right) pair.
     */
    private final Map<String, Integer> mergeRanks;

    private ByteLevelBpeTokenizer(Vocabulary vocab, PreTokenizer preTokenizer, Map<String, Integer> mergeRanks) {
        super(vocab);
        this.preTokenizer = preTokenizer;
        this.mergeRanks = mergeRanks;
    }

    static ByteLevelBpeTokenizer load(GgufFile f) {
        String pre = f.getString("tokenizer.ggml.pre", "default"); // llama.cpp falls back to the default regexes
        PreTokenizer preTokenizer = PreTokenizer.forName(pre);
        if (preTokenizer == null) throw f.fail("tokenizer.ggml.pre = '" + pre + "' is not a supported pre-tokenizer");
        String[] merges = f.getStringArray("tokenizer.ggml.merges");
        if (merges == null) throw f.fail("missing metadata key tokenizer.ggml.merges (string array) for a gpt2 tokenizer");
        Map<String, Integer> ranks = new HashMap<>(merges.length * 2);
        for (int i = 0; i < merges.length; i++) {
            // llama.cpp splits a rule at its first space after position 0 and keeps the first rank of a duplicate
            if (merges[i].indexOf(' ', 1) > 0) ranks.putIfAbsent(merges[i], i);
        }
        // llama.cpp defaults for BPE: BOS = EOS = 11, no unknown token; Llama 3 style vocabularies add BOS
        Vocabulary vocab = Vocabulary.load(f, new Vocabulary.Defaults(11, 11, Vocabulary.NO_TOKEN, preTokenizer.addBos, false));
        return new ByteLevelBpeTokenizer(vocab, preTokenizer, ranks);
    }

    private record Bigram(int left, int right, int rank, int length) {}

    @Override
    void encodeText(String text, boolean afterSpecial, TokenIdList out) {
        for (String word : preTokenizer.split(text)) {
            String mapped = ByteToUnicode.encode(word);
            if (preTokenizer.ignoreMerges) {
                int id = vocab.id(mapped);
                if (id != Vocabulary.NO_TOKEN) {
                    out.add(id);
                    continue;
                }
            }
            encodeWord(mapped, out);
        }
    }

    /** Merges one mapped word; every char of it is one symbol (all mapped chars are in the BMP). */
    private void encodeWord(String word, TokenIdList out) {
        int n = word.length();
        int[] length = new int[n]; // 0 once merged into the left neighbour
        int[] prev = new int[n];
        int[] next = new int[n];
        for (int i = 0; i < n; i++) {
            length[i] = 1;
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        // symbol i starts at char i: merging only ever grows a symbol to the right
        PriorityQueue<Bigram> queue = new PriorityQueue<>(Math.max(1, n), (a, b) ->
                a.rank() != b.rank() ? Integer.compare(a.rank(), b.rank()) : Integer.compare(a.left(), b.left()));
        for (int i = 1; i < n; i++) addBigram(word, length, i - 1, i, queue);

        while (!queue.isEmpty()) {
            Bigram bigram = queue.poll();
            int left = bigram.left();
            int right = bigram.right();
            if (length[left] == 0 || length[right] == 0 || length[left] + length[right] != bigram.length()) continue;
            length[left] += length[right];
            length[right] = 0;
            next[left] = next[right];
            if (next[right] >= 0) prev[next[right]] = left;
            addBigram(word, length, prev[left], left, queue);
            addBigram(word, length, left, next[left], queue);
        }

        for (int i = n > 0 ? 0 : -1; i != -1; i = next[i]) {
            String symbol = word.substring(i, i + length[i]);
            int id = vocab.id(symbol);
            if (id != Vocabulary.NO_TOKEN) {
                out.add(id);
                continue;
            }
            // llama.cpp then looks up each UTF-8 byte of the symbol as a one-byte token; only ASCII can match
            for (int k = 0; k < symbol.length(); k++) {
                char c = symbol.charAt(k);
                if (c < 0x80) {
                    int single = vocab.id(String.valueOf(c));
                    if (single != Vocabulary.NO_TOKEN) out.add(single);
                }
            }
        }
    }

    private void addBigram(String word, int[] length, int left, int right, PriorityQueue<Bigram> queue) {
        if (left < 0 || right < 0) return;
        String key = word.substring(left, left + length[left]) + ' ' + word.substring(right, right + length[right]);
        Integer rank = mergeRanks.get(key);
        if (rank == null) return;
        queue.add(new Bigram(left, right, rank, length[left] + length[right]));
    }

    @Override
    byte[] ordinaryBytes(int id) {
        // llama.cpp decodes only normal tokens of a BPE vocabulary; byte, unused and undefined ones render as nothing
        return vocab.types[id] == Vocabulary.TYPE_NORMAL ? ByteToUnicode.decode(vocab.texts[id]) : new byte[0];
    }

    /** The {@code tokenizer.ggml.pre} name in use. */
    String preTokenizerName() {
        return preTokenizer.name;
    }
}
