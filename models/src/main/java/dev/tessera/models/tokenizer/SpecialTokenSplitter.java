package dev.tessera.models.tokenizer;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;

/**
 * Cuts text at the exact texts of special tokens before the text is tokenized, like llama.cpp's
 * {@code tokenizer_st_partition}: tokens are tried longest text first, and each one splits every remaining
 * text fragment at all its occurrences. User-defined tokens are always cut out; control and unknown tokens only
 * when special tokens are parsed.
 */
final class SpecialTokenSplitter {
    /** A piece of the input: a special token ({@code tokenId >= 0}) or the raw text {@code [start, end)}. */
    record Fragment(int tokenId, int start, int end) {
        boolean isText() { return tokenId < 0; }
    }

    private final Vocabulary vocab;

    SpecialTokenSplitter(Vocabulary vocab) {
        this.vocab = vocab;
    }

    List<Fragment> split(String text, boolean parseSpecial) {
        List<Fragment> fragments = new ArrayList<>();
        if (text.isEmpty()) return fragments;
        fragments.add(new Fragment(-1, 0, text.length()));
        // some vocabularies have thousands of special tokens (DeepSeek: 2400 user-defined); most are ruled out by
        // their first char not occurring in the text at all
        BitSet charsPresent = new BitSet(Character.MAX_VALUE + 1);
        for (int i = 0; i < text.length(); i++) charsPresent.set(text.charAt(i));
        for (int id : vocab.specialIds) {
            int type = vocab.types[id];
            if (!parseSpecial && (type == Vocabulary.TYPE_CONTROL || type == Vocabulary.TYPE_UNKNOWN)) continue;
            String special = vocab.texts[id];
            // no occurrence in the whole text means none in any fragment
            if (!charsPresent.get(special.charAt(0)) || text.indexOf(special) < 0) continue;
            fragments = splitAt(text, fragments, id, special);
        }
        return fragments;
    }

    private List<Fragment> splitAt(String text, List<Fragment> fragments, int id, String special) {
        List<Fragment> out = new ArrayList<>(fragments.size() + 2);
        for (Fragment f : fragments) {
            if (!f.isText()) {
                out.add(f);
                continue;
            }
            int start = f.start();
            int end = f.end();
            while (start < end) {
                int match = text.indexOf(special, start);
                if (match < 0 || match + special.length() > end) {
                    out.add(new Fragment(-1, start, end));
                    break;
                }
                int leftEnd = match;
                if (vocab.leftStrip.get(id)) {
                    while (leftEnd > start && isAsciiSpace(text.charAt(leftEnd - 1))) leftEnd--;
                }
                if (leftEnd > start) out.add(new Fragment(-1, start, leftEnd));
                out.add(new Fragment(id, match, match + special.length()));
                start = match + special.length();
                if (vocab.rightStrip.get(id)) {
                    while (start < end && isAsciiSpace(text.charAt(start))) start++;
                }
            }
        }
        return out;
    }

    /** C {@code isspace} in the "C" locale, which llama.cpp uses for lstrip/rstrip. */
    private static boolean isAsciiSpace(char c) {
        return c == ' ' || (c >= '\t' && c <= '\r');
    }
}
