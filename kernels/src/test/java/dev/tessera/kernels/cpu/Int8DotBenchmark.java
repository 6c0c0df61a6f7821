package dev.tessera.kernels.cpu;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * The routes to an int8 dot product that Java offers, one thread, cache-resident (4096 int8 weights, as 4-bit or 6-bit
 * values, times 4096 int8 activations). The score is multiply-adds per nanosecond, i.e. GMAC/s. Run with
 * {@code bash scripts/jmh.sh Int8DotBenchmark}; measured figures are in docs/BENCHMARKS-NATIVE.md.
 * <ul>
 * <li>{@code pairsScalar}: {@code a[2i]*b[2i] + a[2i+1]*b[2i+1]} over shorts summed into an int, the shape C2 matches as
 * MulAddS2I. As a reduction it is not vectorized.</li>
 * <li>{@code pairsStored}: the same pair sums stored to an int[] (C2 vectorizes that into vpmaddwd), then summed.</li>
 * <li>{@code bytesScalar}: bytes widened in a scalar loop.</li>
 * <li>{@code shortLanes}: the panels' route: int16 multiplies summed in int16 lanes (exact while |Σ| < 2^15), widened
 * to int once per 256 values.</li>
 * <li>{@code intLanes}: shorts widened to int lanes before the multiply.</li>
 * <li>{@code floatLanes}: weight bytes widened to floats, FMAs with x already as floats.</li>
 * </ul>
 * Setup checks every route against {@code bytesScalar}, so a faster route cannot be a wrong one.
 */
@State(Scope.Thread)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class Int8DotBenchmark {
    static final int N = 4096;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_512;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_512;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    private final short[] w16 = new short[N], x16 = new short[N];
    private final byte[] w8 = new byte[N], x8 = new byte[N];
    private final int[] pairSums = new int[N / 2];
    private final float[] xf = new float[N];

    @Setup
    public void setUp() {
        Random random = new Random(1);
        for (int i = 0; i < N; i++) {
            w8[i] = (byte) (random.nextInt(64) - 32);   // a Q6_K value, q - 32
            x8[i] = (byte) (random.nextInt(255) - 127);  // an int8 activation
            w16[i] = w8[i];
            x16[i] = x8[i];
            xf[i] = x8[i];
        }
        int expected = bytesScalar();
        int[] got = {pairsScalar(), pairsStored(), shortLanes(), intLanes(), (int) floatLanes()};
        for (int g : got)
            if (g != expected) throw new IllegalStateException("a route disagrees with the scalar dot: " + g + " against " + expected);
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public int pairsScalar() {
        int s = 0;
        for (int i = 0; i < N; i += 2) s += w16[i] * x16[i] + w16[i + 1] * x16[i + 1];
        return s;
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public int pairsStored() {
        int[] p = pairSums;
        for (int i = 0; i < N / 2; i++) p[i] = w16[2 * i] * x16[2 * i] + w16[2 * i + 1] * x16[2 * i + 1];
        IntVector acc = IntVector.zero(I);
        for (int i = 0; i < N / 2; i += I.length()) acc = acc.add(IntVector.fromArray(I, p, i));
        return acc.reduceLanes(VectorOperators.ADD);
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public int bytesScalar() {
        int s = 0;
        for (int i = 0; i < N; i++) s += w8[i] * x8[i];
        return s;
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public int shortLanes() {
        IntVector total = IntVector.zero(I);
        for (int k = 0; k < N; k += 256) {
            // 8 products of |q - 32| <= 32 and |x| <= 127 per lane: at most 32512, inside a short.
            ShortVector acc = ShortVector.zero(S);
            for (int i = k; i < k + 256; i += S.length())
                acc = acc.add(ShortVector.fromArray(S, w16, i).mul(ShortVector.fromArray(S, x16, i)));
            total = total.add(acc.convertShape(VectorOperators.S2I, I, 0)).add(acc.convertShape(VectorOperators.S2I, I, 1));
        }
        return total.reduceLanes(VectorOperators.ADD);
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public int intLanes() {
        IntVector acc = IntVector.zero(I);
        for (int i = 0; i < N; i += S.length()) {
            ShortVector w = ShortVector.fromArray(S, w16, i), x = ShortVector.fromArray(S, x16, i);
            for (int part = 0; part < 2; part++)
                acc = acc.add(((IntVector) w.convertShape(VectorOperators.S2I, I, part)).mul((IntVector) x.convertShape(VectorOperators.S2I, I, part)));
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public float floatLanes() {
        // x already as floats, as a matmul converts it once for all rows; four sums, so the FMA latency does not bound the loop.
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < N; i += 4 * F.length()) {
            a0 = floats(w8, i).fma(FloatVector.fromArray(F, xf, i), a0);
            a1 = floats(w8, i + 16).fma(FloatVector.fromArray(F, xf, i + 16), a1);
            a2 = floats(w8, i + 32).fma(FloatVector.fromArray(F, xf, i + 32), a2);
            a3 = floats(w8, i + 48).fma(FloatVector.fromArray(F, xf, i + 48), a3);
        }
        return a0.add(a1).add(a2.add(a3)).reduceLanes(VectorOperators.ADD);
    }

    private static FloatVector floats(byte[] a, int i) {
        return (FloatVector) ByteVector.fromArray(B16, a, i).convertShape(VectorOperators.B2F, F, 0);
    }
}
