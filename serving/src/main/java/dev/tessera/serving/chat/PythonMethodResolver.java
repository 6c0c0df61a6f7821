package dev.tessera.serving.chat;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/**
 * Python's {@code str} and {@code dict} methods on Java strings and maps, as chat templates call them
 * ({@code content.strip()}, {@code content.split('</think>')[-1]}, {@code tool.items()}).
 *
 * <p>Jinjava resolves {@code a.b(...)} against Java methods, where {@code startswith} does not exist and
 * {@code split} takes a regular expression; this resolver sits first in the chain and answers the Python
 * names with Python semantics. Anything else falls through to Jinjava's own resolvers.
 */
final class PythonMethodResolver extends ELResolver {

    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
        if (!(method instanceof String name)) return null;
        Object[] args = params == null ? new Object[0] : params;
        Object result;
        if (base instanceof String s) {
            result = stringMethod(s, name, args);
        } else if (base instanceof Map<?, ?> m) {
            result = mapMethod(m, name, args);
        } else {
            return null;
        }
        if (result == NOT_HANDLED) return null;
        context.setPropertyResolved(true);
        return result;
    }

    private static final Object NOT_HANDLED = new Object();

    private static Object stringMethod(String s, String name, Object[] args) {
        return switch (name) {
            case "strip" -> strip(s, chars(args), true, true);
            case "lstrip" -> strip(s, chars(args), true, false);
            case "rstrip" -> strip(s, chars(args), false, true);
            case "startswith" -> matchesAny(s, arg(args, 0), true);
            case "endswith" -> matchesAny(s, arg(args, 0), false);
            case "split" -> split(s, args.length > 0 ? args[0] : null, args.length > 1 ? toInt(args[1]) : -1);
            case "replace" -> replace(s, str(arg(args, 0)), str(arg(args, 1)), args.length > 2 ? toInt(args[2]) : -1);
            case "upper" -> s.toUpperCase(java.util.Locale.ROOT);
            case "lower" -> s.toLowerCase(java.util.Locale.ROOT);
            case "capitalize" -> s.isEmpty() ? s
                    : s.substring(0, 1).toUpperCase(java.util.Locale.ROOT) + s.substring(1).toLowerCase(java.util.Locale.ROOT);
            case "title" -> title(s);
            case "find" -> s.indexOf(str(arg(args, 0)));
            case "count" -> count(s, str(arg(args, 0)));
            case "join" -> join(s, arg(args, 0));
            case "isspace" -> !s.isEmpty() && strip(s, null, true, true).isEmpty();
            case "isdigit" -> !s.isEmpty() && s.chars().allMatch(Character::isDigit);
            case "isalpha" -> !s.isEmpty() && s.chars().allMatch(Character::isLetter);
            default -> NOT_HANDLED;
        };
    }

    private static Object mapMethod(Map<?, ?> m, String name, Object[] args) {
        return switch (name) {
            case "items" -> {
                List<Object> items = new ArrayList<>();
                for (Map.Entry<?, ?> e : m.entrySet()) items.add(new ArrayList<>(java.util.Arrays.asList(e.getKey(), e.getValue())));
                yield items;
            }
            case "keys" -> new ArrayList<Object>(m.keySet());
            case "values" -> new ArrayList<Object>(m.values());
            case "get" -> m.containsKey(arg(args, 0)) ? m.get(arg(args, 0)) : (args.length > 1 ? args[1] : null);
            default -> NOT_HANDLED;
        };
    }

    private static Object arg(Object[] args, int i) {
        return i < args.length ? args[i] : null;
    }

    private static String str(Object o) {
        return o == null ? "None" : o.toString();
    }

    private static String chars(Object[] args) {
        return args.length > 0 && args[0] != null ? args[0].toString() : null;
    }

    private static int toInt(Object o) {
        return o instanceof Number n ? n.intValue() : Integer.parseInt(o.toString());
    }

    /** Python's {@code str.isspace} per code point, which is what {@code strip()} without arguments removes. */
    private static boolean isPythonSpace(int cp) {
        return Character.isWhitespace(cp) || Character.isSpaceChar(cp) || cp == 0x1c || cp == 0x1d || cp == 0x1e || cp == 0x1f
                || cp == 0x85;
    }

    private static String strip(String s, String chars, boolean left, boolean right) {
        int start = 0;
        int end = s.length();
        if (left) {
            while (start < end) {
                int cp = s.codePointAt(start);
                if (!(chars == null ? isPythonSpace(cp) : chars.indexOf(cp) >= 0)) break;
                start += Character.charCount(cp);
            }
        }
        if (right) {
            while (end > start) {
                int cp = s.codePointBefore(end);
                if (!(chars == null ? isPythonSpace(cp) : chars.indexOf(cp) >= 0)) break;
                end -= Character.charCount(cp);
            }
        }
        return s.substring(start, end);
    }

    /** {@code startswith}/{@code endswith} take one string or a tuple of strings. */
    private static boolean matchesAny(String s, Object affix, boolean prefix) {
        if (affix instanceof Collection<?> options) {
            for (Object o : options) if (matchesAny(s, o, prefix)) return true;
            return false;
        }
        String a = str(affix);
        return prefix ? s.startsWith(a) : s.endsWith(a);
    }

    private static List<String> split(String s, Object sep, int maxSplit) {
        List<String> parts = new ArrayList<>();
        if (sep == null) { // runs of whitespace, no empty strings
            int i = 0;
            int n = s.length();
            while (i < n) {
                while (i < n && isPythonSpace(s.codePointAt(i))) i += Character.charCount(s.codePointAt(i));
                if (i >= n) break;
                if (maxSplit >= 0 && parts.size() == maxSplit) {
                    parts.add(strip(s.substring(i), null, false, true));
                    return parts;
                }
                int j = i;
                while (j < n && !isPythonSpace(s.codePointAt(j))) j += Character.charCount(s.codePointAt(j));
                parts.add(s.substring(i, j));
                i = j;
            }
            return parts;
        }
        String d = sep.toString();
        if (d.isEmpty()) throw new IllegalArgumentException("empty separator");
        int from = 0;
        while (maxSplit < 0 || parts.size() < maxSplit) {
            int at = s.indexOf(d, from);
            if (at < 0) break;
            parts.add(s.substring(from, at));
            from = at + d.length();
        }
        parts.add(s.substring(from));
        return parts;
    }

    private static String replace(String s, String old, String replacement, int count) {
        if (count < 0) return s.replace(old, replacement);
        StringBuilder out = new StringBuilder();
        int from = 0;
        for (int done = 0; done < count; done++) {
            int at = s.indexOf(old, from);
            if (at < 0) break;
            out.append(s, from, at).append(replacement);
            from = at + old.length();
            if (old.isEmpty()) { // Python inserts between characters
                if (from >= s.length()) { from = s.length(); break; }
                out.append(s.charAt(from));
                from++;
            }
        }
        return out.append(s.substring(from)).toString();
    }

    private static String title(String s) {
        StringBuilder out = new StringBuilder(s.length());
        boolean prevCased = false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            out.append(prevCased ? Character.toLowerCase(c) : Character.toUpperCase(c));
            prevCased = Character.isLetter(c);
        }
        return out.toString();
    }

    private static int count(String s, String sub) {
        if (sub.isEmpty()) return s.codePointCount(0, s.length()) + 1;
        int n = 0;
        for (int at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length())) n++;
        return n;
    }

    private static String join(String sep, Object items) {
        StringBuilder out = new StringBuilder();
        Iterator<?> it = items instanceof Iterable<?> i ? i.iterator() : List.of().iterator();
        while (it.hasNext()) {
            out.append(it.next());
            if (it.hasNext()) out.append(sep);
        }
        return out.toString();
    }

    @Override
    public Object getValue(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {}

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
        return true;
    }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
        return null;
    }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
        return null;
    }
}
