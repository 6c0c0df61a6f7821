package dev.tessera.kernels.cpu;

import dev.tessera.kernels.Activations;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** The CPU backend's argmax, as Backend.argmax defines it: per row, ties to the lowest index, NaN never wins, -1 for no finite value. */
class CpuBackendArgmaxTest {

    @Test
    void picksTheLargestOfEachRow() {
        float nan = Float.NaN, inf = Float.POSITIVE_INFINITY;
        float[] rows = {
                0.5f, 2f, -1f, 2f, 1.5f,          // tie: the lower index
                nan, -3f, nan, -2f, -2.5f,        // NaN never wins
                -inf, -inf, -inf, -inf, -inf,     // nothing finite ranks
                nan, nan, nan, nan, nan,
                -inf, -inf, 7f, inf, 0f};         // +inf is the largest
        try (CpuBackend backend = new CpuBackend(1)) {
            Activations logits = backend.allocate(5, 5);
            backend.upload(rows, logits, 5);
            int[] ids = new int[5];
            backend.argmax(logits, 5, ids);
            assertArrayEquals(new int[] {1, 3, -1, -1, 3}, ids);
        }
    }
}
