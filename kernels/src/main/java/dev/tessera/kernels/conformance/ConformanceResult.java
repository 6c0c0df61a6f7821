package dev.tessera.kernels.conformance;

import java.util.Locale;

/**
 * The outcome of one case: max absolute error, max absolute error over the largest reference magnitude, and the
 * tolerance on the latter. {@code error} holds the one-line failure when a run threw; {@code unsupported} marks a case
 * the backend under test has no format for.
 */
public record ConformanceResult(String name, String op, double maxAbsError, double maxRelError, double tolerance,
                                String error, boolean unsupported) {

    public static ConformanceResult measured(ConformanceCase c, double maxAbsError, double maxRelError) {
        return new ConformanceResult(c.name(), c.op(), maxAbsError, maxRelError, c.tolerance(), null, false);
    }

    public static ConformanceResult failed(ConformanceCase c, String error) {
        return new ConformanceResult(c.name(), c.op(), Double.NaN, Double.NaN, c.tolerance(), error, false);
    }

    public static ConformanceResult unsupported(ConformanceCase c, String reason) {
        return new ConformanceResult(c.name(), c.op(), Double.NaN, Double.NaN, c.tolerance(), reason, true);
    }

    /** NaN errors fail: a NaN where the reference has a number is a wrong result. */
    public boolean passed() {
        return error == null && !unsupported && maxRelError <= tolerance;
    }

    /** "ok", "FAIL" or "SKIP" (unsupported), the summary table's status column. */
    public String status() {
        return unsupported ? "SKIP" : passed() ? "ok" : "FAIL";
    }

    /** The value column: the errors against the tolerance, or the failure. */
    public String value() {
        if (error != null) return error;
        return String.format(Locale.ROOT, "abs %.2e  rel %.2e  (tol %.0e)", maxAbsError, maxRelError, tolerance);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%-55s %s %s", name, value(), status());
    }
}
