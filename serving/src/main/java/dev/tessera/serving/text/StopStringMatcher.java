package dev.tessera.serving.text;

import java.util.List;

/**
 * Finds stop strings in streamed text. Text that could be the start of a stop string is held back until the next
 * piece shows whether it is one, so a stop string split across tokens (or chunks) is still cut, and text before it is
 * released as early as possible. Once a stop string is found, the text is cut before it and nothing more is
 * released.
 */
public final class StopStringMatcher {
    private final List<String> stops;
    private final StringBuilder held = new StringBuilder();
    private boolean stopped;

    /** @param stops non-empty stop strings (none = pass everything through) */
    public StopStringMatcher(List<String> stops) {
        this.stops = List.copyOf(stops);
    }

    /** Adds text; returns the part that can no longer be the start of a stop string. */
    public String push(String text) {
        if (stopped) return "";
        if (stops.isEmpty()) return text;
        held.append(text);
        int cut = -1;
        for (String s : stops) {
            int i = held.indexOf(s);
            if (i >= 0 && (cut < 0 || i < cut)) cut = i;
        }
        if (cut >= 0) {
            stopped = true;
            String out = held.substring(0, cut);
            held.setLength(0);
            return out;
        }
        int keep = longestSuffixThatStartsAStop();
        String out = held.substring(0, held.length() - keep);
        held.delete(0, held.length() - keep);
        return out;
    }

    /** The end of the text: whatever was held back, since no stop string followed. */
    public String flush() {
        if (stopped) return "";
        String out = held.toString();
        held.setLength(0);
        return out;
    }

    /** True once a stop string was found. */
    public boolean stopped() {
        return stopped;
    }

    private int longestSuffixThatStartsAStop() {
        String h = held.toString();
        int best = 0;
        for (String s : stops) {
            int max = Math.min(s.length() - 1, h.length());
            for (int k = max; k > best; k--) {
                if (h.regionMatches(h.length() - k, s, 0, k)) {
                    best = k;
                    break;
                }
            }
        }
        return best;
    }
}
