package dev.tessera.serving.chat;

import java.time.ZonedDateTime;
import java.time.format.TextStyle;
import java.util.Locale;

/**
 * The functions Hugging Face transformers adds to a chat template's globals: {@code raise_exception(msg)}
 * and {@code strftime_now(format)}.
 *
 * <p>Jinjava calls functions as static methods, so the state of the render in progress (its clock, the
 * first message raised) lives in a thread-local that {@link ChatTemplate#render} sets and clears; a render
 * runs start to finish on the calling thread.
 */
final class Jinja2Globals {
    private Jinja2Globals() {}

    /** The render in progress on this thread. */
    static final class RenderState {
        final ZonedDateTime now;
        String raised;

        RenderState(ZonedDateTime now) {
            this.now = now;
        }
    }

    static final ThreadLocal<RenderState> CURRENT = new ThreadLocal<>();

    /**
     * {@code raise_exception(msg)}. Jinja2 stops rendering here; Jinjava records a failed call and goes on,
     * so the first message is kept and {@link ChatTemplate#render} throws it once rendering returns.
     */
    public static String raiseException(Object message) {
        RenderState state = CURRENT.get();
        String text = String.valueOf(message);
        if (state != null && state.raised == null) state.raised = text;
        throw new IllegalArgumentException(text);
    }

    /** {@code strftime_now(format)}: the render's clock formatted with Python's strftime directives. */
    public static String strftimeNow(String format) {
        RenderState state = CURRENT.get();
        ZonedDateTime now = state != null ? state.now : ZonedDateTime.now();
        return strftime(now, format);
    }

    /** Python's {@code datetime.strftime} for the directives chat templates use, in the C locale. */
    static String strftime(ZonedDateTime t, String format) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                out.append(c);
                continue;
            }
            char d = format.charAt(++i);
            switch (d) {
                case 'd' -> out.append(two(t.getDayOfMonth()));
                case 'm' -> out.append(two(t.getMonthValue()));
                case 'Y' -> out.append(t.getYear());
                case 'y' -> out.append(two(t.getYear() % 100));
                case 'H' -> out.append(two(t.getHour()));
                case 'I' -> out.append(two((t.getHour() + 11) % 12 + 1));
                case 'M' -> out.append(two(t.getMinute()));
                case 'S' -> out.append(two(t.getSecond()));
                case 'p' -> out.append(t.getHour() < 12 ? "AM" : "PM");
                case 'b', 'h' -> out.append(t.getMonth().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'B' -> out.append(t.getMonth().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'a' -> out.append(t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'A' -> out.append(t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'j' -> out.append(String.format(Locale.ROOT, "%03d", t.getDayOfYear()));
                case 'w' -> out.append(t.getDayOfWeek().getValue() % 7);
                case 'e' -> out.append(String.format(Locale.ROOT, "%2d", t.getDayOfMonth()));
                case '-' -> { // glibc's %-d, %-m: no padding
                    if (i + 1 < format.length()) {
                        char e = format.charAt(++i);
                        switch (e) {
                            case 'd' -> out.append(t.getDayOfMonth());
                            case 'm' -> out.append(t.getMonthValue());
                            case 'H' -> out.append(t.getHour());
                            case 'I' -> out.append((t.getHour() + 11) % 12 + 1);
                            default -> out.append("%-").append(e);
                        }
                    }
                }
                case '%' -> out.append('%');
                default -> out.append('%').append(d);
            }
        }
        return out.toString();
    }

    private static String two(int v) {
        return v < 10 ? "0" + v : Integer.toString(v);
    }
}
