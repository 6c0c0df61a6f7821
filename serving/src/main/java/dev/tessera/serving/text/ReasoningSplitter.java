package dev.tessera.serving.text;

/**
 * Splits a chat answer's text, as it streams, into the model's reasoning and its reply, the way llama-server's
 * {@code --reasoning-format deepseek} and vLLM's reasoning parsers do: text between {@code <think>} and
 * {@code </think>} is reasoning, the rest is content. Qwen3 opens the block itself; DeepSeek-R1's template ends the
 * prompt with {@code <think>}, so its answer starts inside the block ({@code startsInReasoning}). A block left open
 * (the answer ran out of tokens) is all reasoning. A tag split across deltas is held back until it is whole or proved
 * not to be one; whitespace right after {@code </think>} is dropped, as both servers do.
 */
public final class ReasoningSplitter {
    static final String OPEN = "<think>", CLOSE = "</think>";

    /** What one delta adds to each side; either may be empty. */
    public record Parts(String reasoning, String content) {
        static final Parts NONE = new Parts("", "");
    }

    private enum State { BEFORE, REASONING, CONTENT }

    private State state;
    private final StringBuilder held = new StringBuilder();
    /** False right after {@code </think>}, until the reply's first non-whitespace. */
    private boolean contentStarted = true;

    /**
     * Whether llama-server's reasoning format {@code name} splits thoughts off: "none" keeps them in the content,
     * "deepseek" and "auto" split them; null for any other name (the caller words the error for its input).
     */
    public static Boolean splits(String name) {
        return switch (name) {
            case "none" -> false;
            case "deepseek", "auto" -> true;
            default -> null;
        };
    }

    public ReasoningSplitter(boolean startsInReasoning) {
        state = startsInReasoning ? State.REASONING : State.BEFORE;
    }

    /** Whether a rendered prompt leaves the answer inside an open think block (DeepSeek-R1's template). */
    public static boolean promptOpensReasoning(String prompt) {
        String p = prompt.stripTrailing();
        return p.endsWith(OPEN) && p.lastIndexOf(CLOSE) < p.lastIndexOf(OPEN);
    }

    public Parts feed(String text) {
        if (text.isEmpty()) return Parts.NONE;
        held.append(text);
        StringBuilder reasoning = new StringBuilder(), content = new StringBuilder();
        while (true) {
            if (state == State.BEFORE) {
                String s = held.toString().stripLeading();
                if (s.startsWith(OPEN)) {
                    held.setLength(0);
                    held.append(s.substring(OPEN.length()));
                    state = State.REASONING;
                } else if (OPEN.startsWith(s)) {
                    return Parts.NONE;  // whitespace or part of the tag so far
                } else {
                    state = State.CONTENT;
                }
            } else if (state == State.REASONING) {
                int close = held.indexOf(CLOSE);
                if (close < 0) {
                    int keep = partialTagLength(held, CLOSE);
                    reasoning.append(held, 0, held.length() - keep);
                    held.delete(0, held.length() - keep);
                    return new Parts(reasoning.toString(), content.toString());
                }
                reasoning.append(held, 0, close);
                held.delete(0, close + CLOSE.length());
                state = State.CONTENT;
                contentStarted = false;
            } else {
                if (!contentStarted) {
                    String s = held.toString().stripLeading();
                    held.setLength(0);
                    held.append(s);
                    if (s.isEmpty()) return new Parts(reasoning.toString(), content.toString());
                    contentStarted = true;
                }
                content.append(held);
                held.setLength(0);
                return new Parts(reasoning.toString(), content.toString());
            }
        }
    }

    /** What is still held at the end of the answer: a tag that never completed is text of the side it was on. */
    public Parts finish() {
        String rest = held.toString();
        held.setLength(0);
        return switch (state) {
            case REASONING -> new Parts(rest, "");
            case BEFORE -> new Parts("", rest);
            case CONTENT -> new Parts("", contentStarted ? rest : rest.stripLeading());
        };
    }

    /** The length of the longest end of {@code text} that begins {@code tag} (a tag that may be completed by what follows). */
    private static int partialTagLength(CharSequence text, String tag) {
        for (int n = Math.min(tag.length() - 1, text.length()); n > 0; n--) {
            boolean match = true;
            for (int i = 0; i < n && match; i++) match = text.charAt(text.length() - n + i) == tag.charAt(i);
            if (match) return n;
        }
        return 0;
    }
}
