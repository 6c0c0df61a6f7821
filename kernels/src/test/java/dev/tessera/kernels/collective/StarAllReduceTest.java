package dev.tessera.kernels.collective;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class StarAllReduceTest {
    static Stream<Arguments> groups() {
        List<Arguments> cases = new ArrayList<>();
        for (int size : new int[] {2, 3, 4}) for (int length : new int[] {1, 7, 65536 + 3}) cases.add(Arguments.of(size, length));
        return cases.stream();
    }

    /** Random, non-integer values so that a different summation order would change the last bits. */
    static float[][] inputs(int size, int length, long seed) {
        Random random = new Random(seed);
        float[][] x = new float[size][length];
        for (float[] row : x) for (int i = 0; i < length; i++) row[i] = (float) random.nextGaussian() * 1000f;
        return x;
    }

    /** Runs one sum per rank concurrently (each on its own thread) over data[rank][offset, offset+length). */
    static void sumAll(List<AllReduce> group, float[][] data, int offset, int length) throws Exception {
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> done = new ArrayList<>();
            for (int r = 0; r < group.size(); r++) {
                int rank = r;
                done.add(pool.submit(() -> { group.get(rank).sum(data[rank], offset, length); return null; }));
            }
            for (Future<?> f : done) f.get();
        }
    }

    @ParameterizedTest(name = "{0} ranks, {1} floats")
    @MethodSource("groups")
    void sumsInRankOrderIdenticallyOnEveryRank(int size, int length) throws Exception {
        List<AllReduce> group = CollectiveGroup.openLocal(AllReduceKind.STAR, size, Duration.ofSeconds(10));
        try {
            for (int r = 0; r < size; r++) {
                assertEquals(r, group.get(r).rank());
                assertEquals(size, group.get(r).size());
            }
            // Three rounds, to exercise the sequence numbers of a persistent connection.
            for (int round = 0; round < 3; round++) {
                float[][] x = inputs(size, length, 31L * round + size);
                float[] expected = new float[length];
                for (int i = 0; i < length; i++) {
                    float acc = x[0][i];
                    for (int r = 1; r < size; r++) acc += x[r][i];
                    expected[i] = acc;
                }
                float[][] data = new float[size][];
                for (int r = 0; r < size; r++) data[r] = x[r].clone();
                sumAll(group, data, 0, length);
                for (int r = 0; r < size; r++) assertArrayEquals(expected, data[r], 0f, "rank " + r + ", round " + round);
            }
        } finally {
            group.forEach(AllReduce::close);
        }
    }

    @ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.EnumSource(AllReduceKind.class)
    void sumsOnlyTheGivenRange(AllReduceKind kind) throws Exception {
        List<AllReduce> group = CollectiveGroup.openLocal(kind, 3, Duration.ofSeconds(10));
        try {
            float[][] data = new float[3][20];
            for (int r = 0; r < 3; r++) java.util.Arrays.fill(data[r], r + 1);
            sumAll(group, data, 5, 10);
            for (int r = 0; r < 3; r++) {
                for (int i = 0; i < 20; i++) assertEquals(i >= 5 && i < 15 ? 6f : r + 1, data[r][i], "rank " + r + " [" + i + "]");
            }
        } finally {
            group.forEach(AllReduce::close);
        }
    }
}
