package dev.tessera.serving.chat;

import java.util.ArrayList;
import java.util.List;

/**
 * Rewrites the few Jinja2 expression forms whose parse differs in Jinjava, so a Hugging Face chat template
 * means the same thing in both. Only code inside {@code {{ }}} and {@code {% %}} is touched; text, comments
 * and string literals are copied as they are.
 *
 * <ul>
 *   <li>{@code not} binds looser than comparisons and tests in Jinja2 ({@code not x is defined} is
 *       {@code not (x is defined)}); in Jinjava it binds tightest. Each unary {@code not} gets explicit
 *       parentheses up to the next {@code and}, {@code or}, {@code if}, {@code else}, comma or closing bracket.
 *   <li>A keyword argument's value is a whole expression in Jinja2 ({@code namespace(i=xs|length - 1)});
 *       Jinjava's {@code =} binds tighter than {@code -}. Values of keyword arguments get parentheses.
 *   <li>Jinjava has no slice step: {@code xs[::-1]} becomes {@code xs|reverse|list}.
 * </ul>
 */
final class Jinja2Rewriter {
    private Jinja2Rewriter() {}

    static String rewrite(String source) {
        StringBuilder out = new StringBuilder(source.length() + 64);
        int i = 0;
        int n = source.length();
        while (i < n) {
            int open = nextOpener(source, i);
            if (open < 0) {
                out.append(source, i, n);
                break;
            }
            out.append(source, i, open);
            char kind = source.charAt(open + 1);
            if (kind == '#') {
                int close = source.indexOf("#}", open + 2);
                int end = close < 0 ? n : close + 2;
                out.append(source, open, end);
                i = end;
                continue;
            }
            String closer = kind == '{' ? "}}" : "%}";
            int codeStart = open + 2;
            if (codeStart < n && (source.charAt(codeStart) == '-' || source.charAt(codeStart) == '+')) codeStart++;
            int close = findCloser(source, codeStart, closer);
            if (close < 0) { // unterminated: leave it to Jinjava to report
                out.append(source, open, n);
                break;
            }
            int codeEnd = close;
            if (codeEnd > codeStart && (source.charAt(codeEnd - 1) == '-' || source.charAt(codeEnd - 1) == '+')) codeEnd--;
            String code = source.substring(codeStart, codeEnd);
            out.append(source, open, codeStart);
            if (kind == '%' && code.strip().equals("raw")) {
                int endRaw = source.indexOf("endraw", close);
                int rawEnd = endRaw < 0 ? n : source.indexOf("%}", endRaw);
                rawEnd = rawEnd < 0 ? n : rawEnd + 2;
                out.append(code).append(source, codeEnd, rawEnd);
                i = rawEnd;
                continue;
            }
            out.append(rewriteCode(code));
            out.append(source, codeEnd, close + 2);
            i = close + 2;
        }
        return out.toString();
    }

    private static int nextOpener(String s, int from) {
        for (int i = s.indexOf('{', from); i >= 0 && i + 1 < s.length(); i = s.indexOf('{', i + 1)) {
            char c = s.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') return i;
        }
        return -1;
    }

    /** The index of {@code closer} after {@code from}, skipping string literals. */
    private static int findCloser(String s, int from, String closer) {
        int i = from;
        while (i < s.length()) {
            char c = s.charAt(i);
            if (c == '\'' || c == '"') {
                i = skipString(s, i);
                continue;
            }
            if (s.startsWith(closer, i)) return i;
            i++;
        }
        return -1;
    }

    private static int skipString(String s, int quoteAt) {
        char q = s.charAt(quoteAt);
        int i = quoteAt + 1;
        while (i < s.length() && s.charAt(i) != q) {
            if (s.charAt(i) == '\\') i++;
            i++;
        }
        return Math.min(i + 1, s.length());
    }

    private enum Kind { SPACE, STRING, NAME, NUMBER, OP }

    private record Token(Kind kind, String text) {
        boolean is(String t) {
            return kind != Kind.STRING && text.equals(t);
        }
    }

    static String rewriteCode(String code) {
        List<Token> tokens = tokenize(code);
        replaceReverseSlices(tokens);
        int size = tokens.size();
        int[] opens = new int[size + 1];  // "(" to insert before token i
        int[] closes = new int[size + 1]; // ")" to insert before token i
        for (int i = 0; i < size; i++) {
            Token t = tokens.get(i);
            if (t.is("not") && t.kind == Kind.NAME && isUnaryNot(tokens, i)) {
                int start = nextSignificant(tokens, i + 1);
                if (start < 0) continue;
                int end = endOfOperand(tokens, start, true);
                opens[start]++;
                closes[end]++;
            } else if (t.is("=") && isKeywordArgument(tokens, i)) {
                int start = nextSignificant(tokens, i + 1);
                if (start < 0) continue;
                int end = endOfOperand(tokens, start, false);
                opens[start]++;
                closes[end]++;
            }
        }
        StringBuilder out = new StringBuilder(code.length() + 16);
        for (int i = 0; i <= size; i++) {
            out.append(")".repeat(closes[i]));
            out.append("(".repeat(opens[i]));
            if (i < size) out.append(tokens.get(i).text);
        }
        return out.toString();
    }

    /** {@code not} is the unary operator unless it is part of {@code not in} or {@code is not}. */
    private static boolean isUnaryNot(List<Token> tokens, int i) {
        int next = nextSignificant(tokens, i + 1);
        if (next >= 0 && tokens.get(next).is("in")) return false;
        int prev = previousSignificant(tokens, i - 1);
        return prev < 0 || !tokens.get(prev).is("is");
    }

    /** {@code name=} directly inside a call's parentheses. */
    private static boolean isKeywordArgument(List<Token> tokens, int i) {
        int prev = previousSignificant(tokens, i - 1);
        if (prev < 0 || tokens.get(prev).kind != Kind.NAME) return false;
        int before = previousSignificant(tokens, prev - 1);
        if (before < 0) return false;
        if (!tokens.get(before).is("(") && !tokens.get(before).is(",")) return false;
        int depth = 0;
        for (int k = i - 1; k >= 0; k--) {
            Token t = tokens.get(k);
            if (t.is(")") || t.is("]") || t.is("}")) depth++;
            else if (t.is("(") || t.is("[") || t.is("{")) {
                if (depth == 0) return t.is("(");
                depth--;
            }
        }
        return false;
    }

    /**
     * The token index where an operand starting at {@code start} ends: the first comma, closing bracket or
     * (for {@code not}) {@code and}/{@code or}/{@code if}/{@code else} outside brackets.
     */
    private static int endOfOperand(List<Token> tokens, int start, boolean stopAtBoolean) {
        int depth = 0;
        int lastSignificant = start;
        for (int k = start; k < tokens.size(); k++) {
            Token t = tokens.get(k);
            if (t.kind == Kind.SPACE) continue;
            if (t.is("(") || t.is("[") || t.is("{")) depth++;
            else if (t.is(")") || t.is("]") || t.is("}")) {
                if (depth == 0) return lastSignificant + 1;
                depth--;
            } else if (depth == 0) {
                if (t.is(",")) return lastSignificant + 1;
                if (t.kind == Kind.NAME && (t.is("if") || t.is("else")
                        || (stopAtBoolean && (t.is("and") || t.is("or"))))) return lastSignificant + 1;
                if (!stopAtBoolean && t.kind == Kind.NAME && (t.is("for"))) return lastSignificant + 1;
            }
            lastSignificant = k;
        }
        return lastSignificant + 1;
    }

    private static int nextSignificant(List<Token> tokens, int from) {
        for (int k = from; k < tokens.size(); k++) if (tokens.get(k).kind != Kind.SPACE) return k;
        return -1;
    }

    private static int previousSignificant(List<Token> tokens, int from) {
        for (int k = from; k >= 0; k--) if (tokens.get(k).kind != Kind.SPACE) return k;
        return -1;
    }

    /** {@code [ :: -1 ]} → {@code |reverse|list}. */
    private static void replaceReverseSlices(List<Token> tokens) {
        String[] pattern = {"[", ":", ":", "-", "1", "]"};
        for (int i = 0; i < tokens.size(); i++) {
            if (!tokens.get(i).is("[")) continue;
            int k = i;
            int matched = 0;
            int last = -1;
            while (matched < pattern.length && k < tokens.size()) {
                Token t = tokens.get(k);
                if (t.kind == Kind.SPACE && matched > 0) { k++; continue; }
                if (!t.is(pattern[matched])) break;
                matched++;
                last = k;
                k++;
            }
            if (matched == pattern.length) {
                tokens.subList(i, last + 1).clear();
                tokens.add(i, new Token(Kind.OP, "|reverse|list"));
            }
        }
    }

    private static List<Token> tokenize(String code) {
        List<Token> tokens = new ArrayList<>();
        int i = 0;
        int n = code.length();
        while (i < n) {
            char c = code.charAt(i);
            int j;
            Kind kind;
            if (Character.isWhitespace(c)) {
                j = i;
                while (j < n && Character.isWhitespace(code.charAt(j))) j++;
                kind = Kind.SPACE;
            } else if (c == '\'' || c == '"') {
                j = skipString(code, i);
                kind = Kind.STRING;
            } else if (Character.isLetter(c) || c == '_') {
                j = i;
                while (j < n && (Character.isLetterOrDigit(code.charAt(j)) || code.charAt(j) == '_')) j++;
                kind = Kind.NAME;
            } else if (Character.isDigit(c)) {
                j = i;
                while (j < n && (Character.isLetterOrDigit(code.charAt(j)) || code.charAt(j) == '.')) j++;
                kind = Kind.NUMBER;
            } else {
                String two = i + 2 <= n ? code.substring(i, i + 2) : "";
                j = switch (two) {
                    case "==", "!=", "<=", ">=", "//", "**" -> i + 2;
                    default -> i + 1;
                };
                kind = Kind.OP;
            }
            tokens.add(new Token(kind, code.substring(i, j)));
            i = j;
        }
        return tokens;
    }
}
