package dev.tessera.kernels.cpu;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * The CPU backend's matmul on a llama-1b FFN shape (8192 x 2048): one token (decode, bound by reading weights)
 * and 128 tokens (prefill, bound by FMAs). Run with scripts/jmh.sh; weights-per-second = rows * cols * tokens / time.
 */
@State(Scope.Benchmark)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0"})
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
public class MatMulBenchmark {
    @Param({"Q4_0", "Q8_0", "F16", "Q4_K", "Q6_K", "Q5_K", "Q4_1", "Q5_0", "IQ4_NL", "IQ4_XS"})
    public String type;

    @Param({"1", "128"})
    public int tokens;

    @Param({"1"})
    public int threads;

    static final int ROWS = 8192, COLS = 2048;
    private Arena arena;
    private CpuBackend backend;
    private Weight weight;
    private Activations x, out;

    @Setup(Level.Trial)
    public void setUp() {
        TensorType t = TensorType.valueOf(type);
        arena = Arena.ofShared();
        MemorySegment data = arena.allocate(t.byteSize((long) ROWS * COLS), 64);
        Random random = new Random(7);
        for (long i = 0; i < data.byteSize(); i += 8) data.set(ValueLayout.JAVA_LONG_UNALIGNED, i, random.nextLong());
        // Keep every f16 in range so no NaN/Inf slows the arithmetic (random bits make some).
        if (t == TensorType.F16) for (long i = 0; i < data.byteSize(); i += 2) data.set(ValueLayout.JAVA_SHORT_UNALIGNED, i, Float.floatToFloat16((float) random.nextGaussian()));
        else MatMulTiming.fixScales(t, data);
        backend = new CpuBackend(threads);
        weight = backend.weight("w", t, data, ROWS, COLS);
        x = backend.allocate(tokens, COLS);
        out = backend.allocate(tokens, ROWS);
        float[] xs = new float[tokens * COLS];
        for (int i = 0; i < xs.length; i++) xs[i] = (float) random.nextGaussian();
        backend.upload(xs, x, tokens);
    }

    @Benchmark
    @org.openjdk.jmh.annotations.OutputTimeUnit(TimeUnit.MILLISECONDS)
    public Activations matmul() {
        backend.matmul(weight, x, tokens, out);
        return out;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        backend.close();
        arena.close();
    }
}
