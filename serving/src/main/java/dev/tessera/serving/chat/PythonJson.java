package dev.tessera.serving.chat;

import java.lang.reflect.Array;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Python's {@code json.dumps(obj, ensure_ascii=False)} over Java maps, lists, strings, numbers, booleans and
 * null: separators {@code ", "} and {@code ": "} (or {@code ","} between items when indenting), non-ASCII
 * text kept as is, control characters escaped.
 */
final class PythonJson {
    private PythonJson() {}

    static String dumps(Object value, Integer indent, boolean sortKeys) {
        StringBuilder out = new StringBuilder();
        write(out, value, indent, sortKeys, 0);
        return out.toString();
    }

    private static void write(StringBuilder out, Object v, Integer indent, boolean sortKeys, int depth) {
        if (v == null) {
            out.append("null");
        } else if (v instanceof Boolean b) {
            out.append(b ? "true" : "false");
        } else if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            if (Double.isNaN(d)) out.append("NaN");
            else if (Double.isInfinite(d)) out.append(d > 0 ? "Infinity" : "-Infinity");
            else out.append(pythonFloat(d));
        } else if (v instanceof BigDecimal bd) {
            out.append(bd.toPlainString());
        } else if (v instanceof Number n) {
            out.append(n.longValue());
        } else if (v instanceof CharSequence s) {
            quote(out, s.toString());
        } else if (v instanceof Map<?, ?> m) {
            List<Map.Entry<?, ?>> entries = new ArrayList<>(m.entrySet());
            if (sortKeys) entries.sort((a, b) -> String.valueOf(a.getKey()).compareTo(String.valueOf(b.getKey())));
            if (entries.isEmpty()) {
                out.append("{}");
                return;
            }
            out.append('{');
            for (int i = 0; i < entries.size(); i++) {
                if (i > 0) out.append(indent == null ? ", " : ",");
                newline(out, indent, depth + 1);
                quote(out, String.valueOf(entries.get(i).getKey()));
                out.append(": ");
                write(out, entries.get(i).getValue(), indent, sortKeys, depth + 1);
            }
            newline(out, indent, depth);
            out.append('}');
        } else if (v instanceof Iterable<?> || v.getClass().isArray()) {
            List<Object> items = new ArrayList<>();
            if (v instanceof Iterable<?> it) for (Object o : it) items.add(o);
            else for (int i = 0; i < Array.getLength(v); i++) items.add(Array.get(v, i));
            if (items.isEmpty()) {
                out.append("[]");
                return;
            }
            out.append('[');
            for (int i = 0; i < items.size(); i++) {
                if (i > 0) out.append(indent == null ? ", " : ",");
                newline(out, indent, depth + 1);
                write(out, items.get(i), indent, sortKeys, depth + 1);
            }
            newline(out, indent, depth);
            out.append(']');
        } else {
            quote(out, v.toString());
        }
    }

    private static void newline(StringBuilder out, Integer indent, int depth) {
        if (indent == null) return;
        out.append('\n');
        out.append(" ".repeat(indent * depth));
    }

    /** Python's float repr: shortest round-trip digits, always with a '.' or exponent. */
    private static String pythonFloat(double d) {
        if (d == Math.rint(d) && Math.abs(d) < 1e16) return String.format(java.util.Locale.ROOT, "%.1f", d);
        String s = Double.toString(d);
        if (s.contains("E")) {
            String[] parts = s.split("E");
            int exp = Integer.parseInt(parts[1]);
            String mantissa = parts[0].endsWith(".0") ? parts[0].substring(0, parts[0].length() - 2) : parts[0];
            return mantissa + "e" + (exp < 0 ? "-" : "+") + (Math.abs(exp) < 10 ? "0" : "") + Math.abs(exp);
        }
        return s;
    }

    private static void quote(StringBuilder out, String s) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                default -> {
                    if (c < 0x20) out.append(String.format(java.util.Locale.ROOT, "\\u%04x", (int) c));
                    else out.append(c);
                }
            }
        }
        out.append('"');
    }
}
