package dev.tessera.serving.cli.benchserve;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Text prompts of about a given number of tokens for {@code tessera bench serve}, built from a fixed word list with a
 * seeded RNG, so every run (and every server) gets the same prompts. The bench only talks to the completions endpoint,
 * so the words-to-tokens ratio is measured once with a probe request ({@link #PROBE_WORDS} words) and passed in.
 */
public final class BenchPrompts {
    /** Common short English words: most tokenizers keep each as one or a few tokens. */
    private static final String[] WORDS = {
            "the", "a", "little", "girl", "boy", "dog", "cat", "bird", "tree", "house", "sun", "moon", "day", "night",
            "happy", "sad", "big", "small", "red", "blue", "green", "ball", "toy", "friend", "mom", "dad", "park", "garden",
            "flower", "water", "cake", "apple", "book", "car", "boat", "fish", "sky", "star", "rain", "snow", "play",
            "run", "jump", "walk", "look", "see", "find", "give", "take", "make", "help", "said", "went", "saw", "had",
            "was", "is", "and", "but", "so", "then", "with", "in", "on", "under", "over", "to", "from", "he", "she",
            "they", "we", "it", "her", "his", "one", "two", "three", "good", "nice", "kind", "funny", "fast", "slow",
            "warm", "cold", "home", "school", "bed", "door", "window", "box", "hat", "shoe", "bear", "lion", "duck",
            "frog", "bunny", "cookie", "milk", "song", "story", "time", "very", "new", "old", "bright", "soft", "loud"};

    /** Words in the probe prompt that measures tokens per word; short enough for any model's context. */
    public static final int PROBE_WORDS = 48;

    private BenchPrompts() {}

    /** The probe prompt: the first {@link #PROBE_WORDS} words of a seeded sequence. */
    public static String probe(long seed) {
        return words(new SplittableRandom(seed ^ 0x5DEECE66DL), PROBE_WORDS);
    }

    /**
     * numPrompts prompts of about promptTokens tokens each; the first sharedPrefixTokens of them (0 for none) are the
     * same text in every prompt, the rest a distinct suffix per prompt.
     */
    public static List<String> build(int numPrompts, int promptTokens, int sharedPrefixTokens, double tokensPerWord, long seed) {
        int prefixWords = sharedPrefixTokens == 0 ? 0 : Math.max(1, (int) Math.round(sharedPrefixTokens / tokensPerWord));
        int totalWords = Math.max(prefixWords + 1, (int) Math.round(promptTokens / tokensPerWord));
        String prefix = words(new SplittableRandom(seed), prefixWords);
        SplittableRandom perPrompt = new SplittableRandom(seed + 1);
        List<String> prompts = new ArrayList<>(numPrompts);
        for (int i = 0; i < numPrompts; i++) {
            String suffix = words(perPrompt.split(), totalWords - prefixWords);
            prompts.add(prefix.isEmpty() ? suffix : prefix + " " + suffix);
        }
        return prompts;
    }

    private static String words(SplittableRandom random, int n) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < n; i++) {
            if (i > 0) sb.append(' ');
            sb.append(WORDS[random.nextInt(WORDS.length)]);
        }
        return sb.toString();
    }
}
