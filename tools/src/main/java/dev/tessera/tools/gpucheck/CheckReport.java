package dev.tessera.tools.gpucheck;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What the GPU check found: one row per measurement or comparison, printed as the summary table that ends stdout.
 * Progress and details go to stderr as they happen ({@link #log}), so a run cut short still leaves its trail.
 */
final class CheckReport {
    /** One line of the summary table; status is ok, FAIL or SKIP. */
    record Row(String section, String item, String value, String status) {}

    private final List<Row> rows = new ArrayList<>();

    void row(String section, String item, String value, String status) {
        rows.add(new Row(section, item, value, status));
    }

    List<Row> rows() {
        return List.copyOf(rows);
    }

    boolean failed() {
        return rows.stream().anyMatch(r -> r.status().equals("FAIL"));
    }

    void printSummary() {
        int w0 = 9, w1 = 10, w2 = 10;
        for (Row r : rows) { w0 = Math.max(w0, r.section().length()); w1 = Math.max(w1, r.item().length()); w2 = Math.max(w2, r.value().length()); }
        w2 = Math.min(w2, 90);
        String format = "%-" + w0 + "s  %-" + w1 + "s  %-" + w2 + "s  %s%n";
        System.out.println();
        System.out.printf(Locale.ROOT, format, "section", "item", "value", "status");
        System.out.println("-".repeat(w0 + w1 + w2 + 14));
        for (Row r : rows) System.out.printf(Locale.ROOT, format, r.section(), r.item(), r.value(), r.status());
        System.out.flush();
    }

    static void log(String format, Object... args) {
        System.err.printf(Locale.ROOT, format + "%n", args);
        System.err.flush();
    }

    static String oneLine(String s) {
        String one = s == null ? "" : s.replace('\n', ' ');
        return one.length() > 160 ? one.substring(0, 157) + "..." : one;
    }
}
