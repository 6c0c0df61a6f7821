package dev.tessera.kernels.cpu;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** rmsNormHeads against the formula computed in doubles: each head of each row on its own, one gamma for all heads. */
class CpuBackendNormTest {

    @Test
    void everyHeadIsNormalisedOnItsOwnWithTheSharedGamma() {
        int tokens = 3, heads = 4, headDim = 24, width = heads * headDim;
        SplittableRandom random = new SplittableRandom(7);
        float[] x = new float[tokens * width], gamma = new float[headDim];
        // Heads of very different scales: a whole-row norm would leave the small ones small.
        for (int i = 0; i < x.length; i++) x[i] = (float) ((random.nextDouble() - 0.5) * Math.pow(10, (i / headDim) % heads - 1));
        for (int i = 0; i < headDim; i++) gamma[i] = (float) (0.5 + random.nextDouble());
        float eps = 1e-6f;
        try (CpuBackend backend = new CpuBackend(2)) {
            Activations a = backend.allocate(tokens, width);
            backend.upload(x, a, tokens);
            backend.rmsNormHeads(a, f32(backend, gamma), eps, tokens, heads);
            float[] got = new float[tokens * width];
            backend.download(a, got, tokens);
            for (int row = 0; row < tokens * heads; row++) {
                double ss = 0;
                for (int i = 0; i < headDim; i++) ss += (double) x[row * headDim + i] * x[row * headDim + i];
                double scale = 1 / Math.sqrt(ss / headDim + eps);
                for (int i = 0; i < headDim; i++) {
                    double want = x[row * headDim + i] * scale * gamma[i];
                    assertEquals(want, got[row * headDim + i], 1e-5 * (1 + Math.abs(want)), "head row " + row + " element " + i);
                }
            }
        }
    }

    @Test
    void aGammaOfTheWrongWidthIsRefused() {
        try (CpuBackend backend = new CpuBackend(1)) {
            Activations a = backend.allocate(1, 64);
            Weight gamma = f32(backend, new float[32]);
            assertThrows(IllegalStateException.class, () -> backend.rmsNormHeads(a, gamma, 1e-6f, 1, 4));
            assertThrows(IllegalStateException.class, () -> backend.rmsNormHeads(a, gamma, 1e-6f, 1, 3));
        }
    }

    private static Weight f32(CpuBackend backend, float[] values) {
        MemorySegment data = Arena.ofAuto().allocate(4L * values.length, 64);
        MemorySegment.copy(values, 0, data, ValueLayout.JAVA_FLOAT_UNALIGNED, 0, values.length);
        return backend.weight("gamma", TensorType.F32, data, 1, values.length);
    }
}
