package dev.tessera.kernels.conformance;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.TensorType;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Every {@link Backend} op on a backend under test against a reference backend (the CPU), after ggml's
 * test-backend-ops: each case runs the same op sequence from the same inputs on both and reports the max absolute
 * and relative error of every output against the case's tolerance. A case whose weight format the backend under test
 * refuses (or, for the expert matmul, has no expert kernel for) is reported unsupported, not failed. Used by the
 * kernels' tests (CPU against CPU with another thread count, CUDA against CPU) and by the GPU check's parity section.
 */
public final class BackendConformance {
    private BackendConformance() {}

    /** Every case; {@code quick} leaves out the in-between sizes (for the GPU check's short run). */
    public static List<ConformanceCase> cases(boolean quick) {
        List<ConformanceCase> cases = new ArrayList<>();
        ElementwiseCases.add(cases, quick);
        MatmulCases.add(cases, quick);
        AttentionCases.add(cases, quick);
        StepCases.add(cases, quick);
        ExpertCases.add(cases, quick);
        return cases;
    }

    /** Runs the cases in order, handing each result to {@code progress} as it comes; one failure never stops the run. */
    public static List<ConformanceResult> run(List<ConformanceCase> cases, Backend reference, Backend underTest, Consumer<ConformanceResult> progress) {
        Map<TensorType, String> unsupported = new EnumMap<>(TensorType.class);
        List<ConformanceResult> results = new ArrayList<>();
        for (ConformanceCase c : cases) {
            ConformanceResult r = runCase(c, reference, underTest, unsupported);
            results.add(r);
            progress.accept(r);
        }
        return results;
    }

    private static ConformanceResult runCase(ConformanceCase c, Backend reference, Backend underTest, Map<TensorType, String> unsupported) {
        if (c.weightType() != null) {
            String reason = unsupported.computeIfAbsent(c.weightType(), t -> supports(underTest, t));
            if (!reason.isEmpty()) return ConformanceResult.unsupported(c, reason);
            if (ExpertCases.OPS.contains(c.op()) && !underTest.supportsExperts(c.weightType()))
                return ConformanceResult.unsupported(c, underTest.name() + " has no expert matmul for " + c.weightType());
        }
        float[] expected;
        try {
            expected = c.run().on(reference);
        } catch (RuntimeException e) {
            return ConformanceResult.failed(c, "reference " + reference.name() + ": " + oneLine(e));
        }
        float[] got;
        try {
            got = c.run().on(underTest);
        } catch (RuntimeException e) {
            return ConformanceResult.failed(c, oneLine(e));
        }
        if (got.length != expected.length)
            return ConformanceResult.failed(c, got.length + " outputs, the reference gave " + expected.length);
        double[] err = compare(expected, got);
        return ConformanceResult.measured(c, err[0], err[1]);
    }

    /**
     * {max |got - expected|, that over max |expected|}. A NaN or infinity where the reference has a finite value makes
     * both NaN, which fails every tolerance.
     */
    public static double[] compare(float[] expected, float[] got) {
        double maxAbs = 0, maxRef = 0;
        for (int i = 0; i < expected.length; i++) {
            double d = Math.abs((double) expected[i] - got[i]);
            if (expected[i] == got[i]) d = 0;  // equal infinities
            if (!(d <= maxAbs)) maxAbs = Double.isInfinite(d) ? Double.NaN : d;  // NaN sticks
            if (Double.isNaN(maxAbs)) break;
            maxRef = Math.max(maxRef, Math.abs(expected[i]));
        }
        return new double[] {maxAbs, maxAbs == 0 ? 0 : maxAbs / Math.max(maxRef, 1e-30)};
    }

    /** Empty when the backend takes weights of this format, else its one-line refusal. */
    private static String supports(Backend backend, TensorType type) {
        try (Arena arena = Arena.ofShared()) {  // shared: a backend may read the bytes on its worker threads
            int cols = 256;  // one block of every format
            backend.weight("probe " + type.ggmlName(), type, arena.allocate(type.byteSize(cols), 64), 1, cols);
            return "";
        } catch (IllegalArgumentException e) {
            return oneLine(e);
        }
    }

    private static String oneLine(Throwable e) {
        String s = (e.getClass().getSimpleName() + ": " + e.getMessage()).replace('\n', ' ');
        return s.length() > 160 ? s.substring(0, 157) + "..." : s;
    }
}
