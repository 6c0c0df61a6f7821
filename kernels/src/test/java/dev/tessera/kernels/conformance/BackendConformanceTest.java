package dev.tessera.kernels.conformance;

import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The conformance suite with the CPU backend on one thread as the reference and on four threads under test: rows and
 * heads split over workers must give what one worker gives. The CUDA run is {@code CudaConformanceTest}.
 */
class BackendConformanceTest {

    @Test
    void cpuWithFourThreadsMatchesCpuWithOne() {
        List<ConformanceCase> cases = BackendConformance.cases(false);
        List<ConformanceResult> results;
        try (CpuBackend one = new CpuBackend(1); CpuBackend four = new CpuBackend(4)) {
            results = BackendConformance.run(cases, one, four, r -> System.err.println("conformance " + r));
        }
        List<String> failures = new ArrayList<>();
        for (ConformanceResult r : results) if (!r.passed()) failures.add(r.toString());
        assertTrue(failures.isEmpty(), "failed cases:\n" + String.join("\n", failures));
        assertEquals(cases.size(), results.size());
    }

    @Test
    void casesCoverEveryBackendOpAndEveryComputableFormat() {
        List<ConformanceCase> cases = BackendConformance.cases(false);
        Set<String> ops = new HashSet<>();
        Set<TensorType> matmulTypes = new HashSet<>(), embedTypes = new HashSet<>();
        for (ConformanceCase c : cases) {
            ops.add(c.op());
            if (c.op().equals("matmul")) matmulTypes.add(c.weightType());
            if (c.op().equals("embed")) embedTypes.add(c.weightType());
        }
        for (String op : List.of("embed", "rmsNorm", "rmsNormHeads", "matmul", "matmul fused", "addBias", "rope", "swiglu", "add", "attention",
                "attention paged", "argmax", "beginStep/endStep", "routeExperts", "matmulExperts", "matmulExperts layer",
                "combineExperts", "addSigmoidGated"))
            assertTrue(ops.contains(op), "no case for " + op);
        for (TensorType t : TensorType.values()) {
            assertEquals(t.computable(), matmulTypes.contains(t), "matmul case for " + t);
            assertEquals(t.computable(), embedTypes.contains(t), "embed case for " + t);
        }
        Set<String> names = new HashSet<>();
        for (ConformanceCase c : cases) assertTrue(names.add(c.name()), "duplicate case name " + c.name());
        assertTrue(BackendConformance.cases(true).size() < cases.size(), "quick leaves cases out");
    }

    @Test
    void compareReportsAbsoluteAndRelativeErrorAndFailsOnNonFiniteResults() {
        assertArrayEquals(new double[] {0, 0}, BackendConformance.compare(new float[] {1, -2}, new float[] {1, -2}));
        double[] err = BackendConformance.compare(new float[] {4, -8, 2}, new float[] {4, -8.5f, 2.25f});
        assertEquals(0.5, err[0], 1e-12);
        assertEquals(0.5 / 8, err[1], 1e-12);
        assertTrue(Double.isNaN(BackendConformance.compare(new float[] {1, 2}, new float[] {Float.NaN, 2})[1]));
        assertTrue(Double.isNaN(BackendConformance.compare(new float[] {1, 2}, new float[] {1, Float.POSITIVE_INFINITY})[1]));
        ConformanceCase c = new ConformanceCase("c", "add", null, 1e-3, b -> new float[0]);
        assertFalse(ConformanceResult.measured(c, Double.NaN, Double.NaN).passed());
        assertFalse(ConformanceResult.measured(c, 1, 2e-3).passed());
        assertTrue(ConformanceResult.measured(c, 1, 1e-3).passed());
        assertEquals("SKIP", ConformanceResult.unsupported(c, "no q4_1").status());
    }

    @Test
    void aBackendThatComputesSomethingElseFails() {
        // The same rmsNorm case with other inputs on the backend under test: a wrong result must not pass.
        List<ConformanceCase> wrong = List.of(new ConformanceCase("rmsNorm of other rows", "rmsNorm", null, 1e-4, b ->
                b.name().contains("4 threads") ? ElementwiseCases.rmsNorm(b, 2, 172) : ElementwiseCases.rmsNorm(b, 1, 172)));
        try (CpuBackend one = new CpuBackend(1); CpuBackend four = new CpuBackend(4)) {
            ConformanceResult r = BackendConformance.run(wrong, one, four, x -> {}).getFirst();
            assertFalse(r.passed(), r.toString());
            assertTrue(r.maxRelError() > 1e-2, r.toString());
        }
    }
}
