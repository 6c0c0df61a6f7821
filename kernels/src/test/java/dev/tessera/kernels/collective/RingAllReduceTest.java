package dev.tessera.kernels.collective;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

class RingAllReduceTest {
    static Stream<Arguments> groups() {
        return StarAllReduceTest.groups();
    }

    @ParameterizedTest(name = "{0} ranks, {1} floats")
    @MethodSource("groups")
    void sumsEachChunkInRingOrderIdenticallyOnEveryRank(int size, int length) throws Exception {
        List<AllReduce> group = CollectiveGroup.openLocal(AllReduceKind.RING, size, Duration.ofSeconds(10));
        try {
            for (int round = 0; round < 3; round++) {
                float[][] x = StarAllReduceTest.inputs(size, length, 17L * round + size);
                // Chunk c = [c*length/size, (c+1)*length/size) is folded starting at rank c and ending at rank c-1.
                float[] expected = new float[length];
                for (int c = 0; c < size; c++) {
                    int start = (int) ((long) c * length / size), end = (int) ((long) (c + 1) * length / size);
                    for (int i = start; i < end; i++) {
                        float acc = x[c][i];
                        for (int k = 1; k < size; k++) acc += x[(c + k) % size][i];
                        expected[i] = acc;
                    }
                }
                float[][] data = new float[size][];
                for (int r = 0; r < size; r++) data[r] = x[r].clone();
                StarAllReduceTest.sumAll(group, data, 0, length);
                for (int r = 0; r < size; r++) assertArrayEquals(expected, data[r], 0f, "rank " + r + ", round " + round);
            }
        } finally {
            group.forEach(AllReduce::close);
        }
    }
}
