package dev.tessera.serving.cli;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Long kebab-case flags ({@code --name value} or {@code --flag}); unknown flags are usage errors (exit 2). */
public final class CliArgs {
    private final Map<String, String> values = new LinkedHashMap<>();

    /** @param flags flags that take no value */
    public CliArgs(List<String> args, Set<String> known, Set<String> flags) {
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (!a.startsWith("--")) throw new UsageException("unexpected argument '" + a + "'");
            String name = a.substring(2);
            String value = null;
            int eq = name.indexOf('=');
            if (eq >= 0) { value = name.substring(eq + 1); name = name.substring(0, eq); }
            if (!known.contains(name) && !flags.contains(name) && !name.equals("help")) throw new UsageException("unknown option --" + name);
            if (flags.contains(name) || name.equals("help")) { values.put(name, "true"); continue; }
            if (value == null) {
                if (i + 1 >= args.size()) throw new UsageException("--" + name + " needs a value");
                value = args.get(++i);
            }
            values.put(name, value);
        }
    }

    public boolean has(String name) { return values.containsKey(name); }

    public String get(String name, String fallback) { return values.getOrDefault(name, fallback); }

    public String require(String name) {
        String v = values.get(name);
        if (v == null) throw new UsageException("--" + name + " is required");
        return v;
    }

    public int getInt(String name, int fallback, int min, int max) {
        String v = values.get(name);
        if (v == null) return fallback;
        try {
            int n = Integer.parseInt(v.trim());
            if (n < min || n > max) throw new UsageException("--" + name + " must be between " + min + " and " + max + ", got " + n);
            return n;
        } catch (NumberFormatException e) {
            throw new UsageException("--" + name + " expects an integer, got '" + v + "'");
        }
    }

    public long getLong(String name, long fallback) {
        String v = values.get(name);
        if (v == null) return fallback;
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException("--" + name + " expects an integer, got '" + v + "'");
        }
    }

    /** A size in bytes: a plain number, or one with a K/M/G/T (powers of 1000) or KiB/MiB/GiB/TiB suffix. */
    public long getBytes(String name, long fallback) {
        String v = values.get(name);
        if (v == null) return fallback;
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*([KMGT]?)(i?)B?", java.util.regex.Pattern.CASE_INSENSITIVE).matcher(v.trim());
        if (!m.matches()) throw new UsageException("--" + name + " expects a size such as 4000000000, 4G or 4GiB, got '" + v + "'");
        int power = "KMGT".indexOf(Character.toUpperCase(m.group(2).isEmpty() ? ' ' : m.group(2).charAt(0))) + 1;
        double bytes = Double.parseDouble(m.group(1)) * Math.pow(m.group(3).isEmpty() ? 1000 : 1024, power);
        if (bytes < 1 || bytes > Long.MAX_VALUE / 2) throw new UsageException("--" + name + " must be between 1 byte and " + (Long.MAX_VALUE / 2) + ", got '" + v + "'");
        return (long) bytes;
    }

    public double getDouble(String name, double fallback, double min, double max) {
        String v = values.get(name);
        if (v == null) return fallback;
        try {
            double d = Double.parseDouble(v.trim());
            if (!(d >= min && d <= max)) throw new UsageException("--" + name + " must be between " + min + " and " + max + ", got " + v);
            return d;
        } catch (NumberFormatException e) {
            throw new UsageException("--" + name + " expects a number, got '" + v + "'");
        }
    }

    /** Bad command-line usage: printed as one line, exit code 2. */
    public static final class UsageException extends RuntimeException {
        public UsageException(String message) { super(message); }
    }
}
