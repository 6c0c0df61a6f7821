package dev.tessera.kernels.cuda;

import dev.tessera.bindings.cuda.cuda_h;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.TensorType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.util.EnumMap;
import java.util.Map;

import static dev.tessera.kernels.cuda.CudaException.check;

/**
 * The kernel functions of tessera.fatbin, looked up once, and a launcher that packs arguments into one reused
 * buffer (cuLaunchKernel copies them at launch, so reuse is safe on the backend's single thread).
 */
final class CudaKernels implements AutoCloseable {
    private static final int MAX_ARGS = 16;
    private static final long GRID_X = offset(cuda_h.CUlaunchConfig, "gridDimX"), GRID_Y = offset(cuda_h.CUlaunchConfig, "gridDimY"),
            GRID_Z = offset(cuda_h.CUlaunchConfig, "gridDimZ"), BLOCK_X = offset(cuda_h.CUlaunchConfig, "blockDimX");
    static final TensorType[] FORMATS = {TensorType.F32, TensorType.F16, TensorType.BF16, TensorType.Q8_0,
            TensorType.Q4_0, TensorType.Q4_K, TensorType.Q6_K};

    final MemorySegment rmsNorm, rope, swiglu, add, addBias;
    final MemorySegment argmax, sampleTopKTopP, convertF32ToF16;
    final MemorySegment copyRows, combineExperts, addSigmoidGated;
    private final Map<TensorType, MemorySegment> embed = new EnumMap<>(TensorType.class);
    private final Map<TensorType, MemorySegment> dequantF16 = new EnumMap<>(TensorType.class);
    private final Map<TensorType, MemorySegment[]> matvec = new EnumMap<>(TensorType.class);
    // Indexed by KvCacheType ordinal: F32, F16 element type of the cache.
    private final MemorySegment[] kvStore, ropeKvStore, attentionDecode, attentionPrefill;

    /**
     * Programmatic dependent launch (sm_90 on): a kernel is launched while the one before it still runs, waits for it
     * in kernel_enter (common.cuh) before touching activations, and meanwhile only prefetches weights. This hides the
     * launch gap between the ~130 small kernels of a decode step. {@code -Dtessera.cuda.pdl=false} turns it off.
     */
    final boolean dependentLaunch;
    /** Weight bytes one matvec launch pulls into L2 before waiting for the previous kernel (0 without PDL). */
    final long prefetchBudgetBytes;

    private final CudaDevice device;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment values = arena.allocate(8L * MAX_ARGS, 8);
    private final MemorySegment pointers = arena.allocate(ValueLayout.ADDRESS, MAX_ARGS);
    private final MemorySegment launchConfig = arena.allocate(cuda_h.CUlaunchConfig);
    private final MemorySegment launchAttribute = arena.allocate(cuda_h.CUlaunchAttribute);
    private int numArgs;

    CudaKernels(CudaDevice device) {
        this.device = device;
        this.dependentLaunch = device.computeCapability >= 90 && Boolean.parseBoolean(System.getProperty("tessera.cuda.pdl", "true"));
        this.prefetchBudgetBytes = dependentLaunch ? Math.max(0, Integer.getInteger("tessera.cuda.prefetchMiB", 8)) * (1L << 20) : 0;
        launchAttribute.set(ValueLayout.JAVA_INT, offset(cuda_h.CUlaunchAttribute, "id"), cuda_h.CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION);
        launchAttribute.set(ValueLayout.JAVA_INT, offset(cuda_h.CUlaunchAttribute, "value"), 1);  // programmaticStreamSerializationAllowed
        launchConfig.set(ValueLayout.ADDRESS, offset(cuda_h.CUlaunchConfig, "hStream"), device.stream);
        launchConfig.set(ValueLayout.ADDRESS, offset(cuda_h.CUlaunchConfig, "attrs"), launchAttribute);
        launchConfig.set(ValueLayout.JAVA_INT, offset(cuda_h.CUlaunchConfig, "numAttrs"), 1);
        launchConfig.set(ValueLayout.JAVA_INT, offset(cuda_h.CUlaunchConfig, "blockDimY"), 1);
        launchConfig.set(ValueLayout.JAVA_INT, offset(cuda_h.CUlaunchConfig, "blockDimZ"), 1);
        for (int i = 0; i < MAX_ARGS; i++) pointers.setAtIndex(ValueLayout.ADDRESS, i, values.asSlice(8L * i, 8));
        rmsNorm = device.function("rms_norm");
        rope = device.function("rope");
        swiglu = device.function("swiglu");
        add = device.function("add");
        addBias = device.function("add_bias");
        kvStore = byKvType("kv_store");
        ropeKvStore = byKvType("rope_kv_store");
        attentionDecode = byKvType("attention_decode");
        attentionPrefill = byKvType("attention_prefill");
        argmax = device.function("argmax");
        sampleTopKTopP = device.function("sample_top_k_top_p");
        convertF32ToF16 = device.function("convert_f32_to_f16");
        copyRows = device.function("copy_rows");
        combineExperts = device.function("combine_experts");
        addSigmoidGated = device.function("add_sigmoid_gated");
        for (TensorType type : FORMATS) {
            String suffix = LaunchGeometry.formatSuffix(type);
            embed.put(type, device.function("embed_" + suffix));
            dequantF16.put(type, device.function("dequant_f16_" + suffix));
            MemorySegment[] tiers = new MemorySegment[LaunchGeometry.MATVEC_TIERS.length];
            for (int i = 0; i < tiers.length; i++) tiers[i] = device.function("matvec_" + suffix + "_" + LaunchGeometry.MATVEC_TIERS[i]);
            matvec.put(type, tiers);
        }
    }

    private static long offset(StructLayout layout, String member) {
        return layout.byteOffset(MemoryLayout.PathElement.groupElement(member));
    }

    private MemorySegment[] byKvType(String kernel) {
        KvCacheType[] types = KvCacheType.values();
        MemorySegment[] functions = new MemorySegment[types.length];
        for (KvCacheType t : types) functions[t.ordinal()] = device.function(kernel + "_" + t);
        return functions;
    }

    MemorySegment kvStore(KvCacheType type) { return kvStore[type.ordinal()]; }
    MemorySegment ropeKvStore(KvCacheType type) { return ropeKvStore[type.ordinal()]; }
    MemorySegment attentionDecode(KvCacheType type) { return attentionDecode[type.ordinal()]; }
    MemorySegment attentionPrefill(KvCacheType type) { return attentionPrefill[type.ordinal()]; }
    MemorySegment embed(TensorType type) { return embed.get(type); }
    MemorySegment dequantF16(TensorType type) { return dequantF16.get(type); }
    MemorySegment matvec(TensorType type, int tier) { return matvec.get(type)[LaunchGeometry.tierIndex(tier)]; }

    /** Starts a new argument list; chain {@link #ptr}, {@link #i32}, {@link #i64}, {@link #f32}, then launch. */
    CudaKernels args() {
        numArgs = 0;
        return this;
    }

    CudaKernels ptr(long devicePointer) { return i64(devicePointer); }

    CudaKernels i64(long v) {
        values.set(ValueLayout.JAVA_LONG, 8L * slot(), v);
        return this;
    }

    CudaKernels i32(int v) {
        values.set(ValueLayout.JAVA_INT, 8L * slot(), v);
        return this;
    }

    CudaKernels f32(float v) {
        values.set(ValueLayout.JAVA_FLOAT, 8L * slot(), v);
        return this;
    }

    private int slot() {
        if (numArgs == MAX_ARGS) throw new IllegalStateException("more than " + MAX_ARGS + " kernel arguments");
        return numArgs++;
    }

    /** Queues the kernel on the device's stream with the arguments given since {@link #args()}. */
    void launch(MemorySegment function, String name, int gridX, int gridY, int blockX) {
        launch(function, name, gridX, gridY, 1, blockX);
    }

    void launch(MemorySegment function, String name, int gridX, int gridY, int gridZ, int blockX) {
        if (gridX <= 0 || gridY <= 0 || gridZ <= 0) return;  // nothing to do (0 tokens or rows)
        long t0 = profile == null ? 0 : synchronizedNanos();
        if (dependentLaunch) {
            launchConfig.set(ValueLayout.JAVA_INT, GRID_X, gridX);
            launchConfig.set(ValueLayout.JAVA_INT, GRID_Y, gridY);
            launchConfig.set(ValueLayout.JAVA_INT, GRID_Z, gridZ);
            launchConfig.set(ValueLayout.JAVA_INT, BLOCK_X, blockX);
            check(cuda_h.cuLaunchKernelEx(launchConfig, function, pointers, MemorySegment.NULL),
                    "cuLaunchKernelEx(" + name + ", grid " + gridX + "x" + gridY + "x" + gridZ + ", block " + blockX + ")");
        } else {
            check(cuda_h.cuLaunchKernel(function, gridX, gridY, gridZ, blockX, 1, 1, 0, device.stream, pointers, MemorySegment.NULL),
                    "cuLaunchKernel(" + name + ", grid " + gridX + "x" + gridY + "x" + gridZ + ", block " + blockX + ")");
        }
        if (profile != null) {
            long[] entry = profile.computeIfAbsent(LAYER_PREFIX.matcher(name).replaceAll(""), k -> new long[2]);
            entry[0]++;
            entry[1] += synchronizedNanos() - t0;
        }
    }

    // ---- profiling: each launch synchronized and timed on the host, summed per kernel (layer numbers dropped) ----

    private static final java.util.regex.Pattern LAYER_PREFIX = java.util.regex.Pattern.compile("blk\\.\\d+\\.");
    private Map<String, long[]> profile;

    void profile(boolean on) {
        profile = on ? new java.util.TreeMap<>() : null;
    }

    boolean profiling() {
        return profile != null;
    }

    /** Kernel name → {launches, nanoseconds} since profiling was switched on. */
    Map<String, long[]> profileResults() {
        return profile == null ? Map.of() : Map.copyOf(profile);
    }

    private long synchronizedNanos() {
        check(cuda_h.cuStreamSynchronize(device.stream), "cuStreamSynchronize");
        return System.nanoTime();
    }

    @Override
    public void close() {
        arena.close();
    }
}
