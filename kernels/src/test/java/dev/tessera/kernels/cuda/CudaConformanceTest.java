package dev.tessera.kernels.cuda;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.conformance.BackendConformance;
import dev.tessera.kernels.conformance.ConformanceCase;
import dev.tessera.kernels.conformance.ConformanceResult;
import dev.tessera.kernels.cpu.CpuBackend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The conformance suite on CUDA device 0 against the CPU backend, plus top-k/top-p sampling (a CUDA-only op, not part
 * of Backend) against its documented rule. Skips, with the reason, where no CUDA device is usable.
 */
class CudaConformanceTest {
    private static CudaBackend gpu;
    private static CpuBackend cpu;

    @BeforeAll
    static void start() {
        try {
            gpu = new CudaBackend(0);
        } catch (RuntimeException e) {  // LibraryUnavailableException, CudaException (no device, no kernels)
            Assumptions.abort("no CUDA device: " + e.getMessage());
        }
        cpu = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        if (gpu != null) gpu.close();
        if (cpu != null) cpu.close();
    }

    @Test
    void everyOpMatchesTheCpuBackend() {
        List<ConformanceCase> cases = BackendConformance.cases(false);
        List<ConformanceResult> results = BackendConformance.run(cases, cpu, gpu, r -> System.err.println("conformance " + r));
        List<String> failures = new ArrayList<>();
        for (int i = 0; i < results.size(); i++) {
            ConformanceResult r = results.get(i);  // results come in case order
            ConformanceCase c = cases.get(i);
            boolean cudaFormat = c.weightType() == null || Arrays.asList(CudaKernels.FORMATS).contains(c.weightType());
            // Formats without CUDA kernels must be refused cleanly; every other case must pass.
            if (cudaFormat ? !r.passed() : !r.unsupported()) failures.add(r.toString());
        }
        assertTrue(failures.isEmpty(), "failed cases:\n" + String.join("\n", failures));
        // The recorded-steps case ran six steps under one key: captured once, replayed five times.
        assertEquals(1, gpu.numGraphs());
    }

    @Test
    void expertsRunOnEveryFormatTheMatmulReads() {
        for (TensorType type : TensorType.values())
            assertEquals(Arrays.asList(CudaKernels.FORMATS).contains(type), gpu.supportsExperts(type), "supportsExperts(" + type + ")");
    }

    @Test
    void samplingPicksWhatTheReferencePicks() {
        Random r = new Random(8);
        int rows = 3, vocab = 5000;
        float[] logits = new float[rows * vocab];
        for (int i = 0; i < logits.length; i++) logits[i] = (float) r.nextGaussian() * 2f;
        Activations g = gpu.allocate(rows, vocab);
        gpu.upload(logits, g, rows);
        int[] picked = new int[rows];
        for (float u : new float[] {0f, 0.3f, 0.77f, 0.999f}) {
            float[] uniforms = {u, u, u};
            gpu.sampleTopKTopP(g, rows, 40, 0.9f, 0.8f, uniforms, picked);
            for (int row = 0; row < rows; row++)
                assertEquals(sampleReference(logits, row * vocab, vocab, 40, 0.9f, 0.8f, u), picked[row], "sample row " + row + " u " + u);
        }
    }

    /** The documented rule of sample_top_k_top_p, in double precision. */
    static int sampleReference(float[] x, int off, int n, int k, float topP, float temperature, float u) {
        Integer[] idx = new Integer[n];
        for (int i = 0; i < n; i++) idx[i] = i;
        Arrays.sort(idx, (a, b) -> x[off + a] != x[off + b] ? Float.compare(x[off + b], x[off + a]) : Integer.compare(a, b));
        double[] p = new double[k];
        double mass = 0;
        for (int j = 0; j < k; j++) { p[j] = Math.exp((x[off + idx[j]] - x[off + idx[0]]) / temperature); mass += p[j]; }
        double kept = 0;
        int numKept = 0;
        while (numKept < k) { kept += p[numKept++]; if (kept >= topP * mass) break; }
        double cum = 0;
        for (int j = 0; j < numKept; j++) { cum += p[j]; if (cum > u * kept) return idx[j]; }
        return idx[numKept - 1];
    }
}
