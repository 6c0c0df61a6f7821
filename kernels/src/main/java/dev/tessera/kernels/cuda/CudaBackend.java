package dev.tessera.kernels.cuda;

import dev.tessera.bindings.cuda.cuda_h;
import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.ExpertRouting;
import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.RopeTable;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.IdentityHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

import static dev.tessera.kernels.cuda.CudaException.check;
import static dev.tessera.kernels.cuda.LaunchGeometry.*;

/**
 * The CUDA backend: GGUF weights uploaded once as-is, F32 activations and the KV cache in device memory, every op a
 * kernel launch on one stream. Matmuls of up to 16 tokens run a dequantizing matvec that reads the weight once for
 * all tokens; larger ones dequantize the weight to F16 and call cublasGemmEx (F16 in, F32 accumulate).
 *
 * <p>The jobs are split by file: this class holds memory and the plain op launches; {@link StepRecorder} the staging
 * buffer and CUDA graph recording of steps ({@link #beginStep}/{@link #endStep}); {@link DeferredLaunches} the launches
 * held back one op so neighbours fuse; {@link AttentionLaunch} the KV store and attention over private and paged
 * caches; {@link CudaSampling} argmax and top-k/top-p on the device; {@link CublasGemm} matmuls past 16 tokens;
 * {@link CudaExperts} the mixture-of-experts ops.
 *
 * <p>Single-threaded like the model that drives it. Not verified on a GPU where marked UNVERIFIED.
 */
public final class CudaBackend implements Backend {
    private static final int INITIAL_STAGING_TOKENS = 1024;

    private final CudaDevice device;
    private final CudaKernels kernels;
    private final Arena arena = Arena.ofShared();
    private final Set<Long> allocations = new LinkedHashSet<>();
    private final Map<RopeTable, Long> ropeTables = new IdentityHashMap<>();
    /** The paged stores this backend made; attention takes paged caches over these only. */
    final Set<CudaKvBlockStore> stores = new LinkedHashSet<>();
    private final StepRecorder steps;
    private final DeferredLaunches deferred;
    private final AttentionLaunch attention;
    private final CudaSampling sampling;
    private final CublasGemm gemm;
    private final CudaExperts experts;

    private Thread currentThread;
    private MemorySegment bounce = MemorySegment.NULL;

    public CudaBackend(int deviceIndex) {
        this.device = new CudaDevice(deviceIndex);
        this.currentThread = Thread.currentThread();
        this.kernels = new CudaKernels(device);
        this.steps = new StepRecorder(this, device, arena, INITIAL_STAGING_TOKENS);
        this.deferred = new DeferredLaunches(this, kernels, steps);
        this.attention = new AttentionLaunch(this, device, kernels, steps, deferred);
        this.sampling = new CudaSampling(this, device, kernels);
        this.gemm = new CublasGemm(this, device, kernels, arena);
        this.experts = new CudaExperts(this, device, kernels, deferred);
    }

    @Override
    public String name() {
        return "cuda:" + device.ordinal + " (" + device.name + ")";
    }

    // ---- memory ----

    @Override
    public Weight weight(String name, TensorType type, MemorySegment data, int rows, int cols) {
        if (formatSuffix(type) == null) throw new IllegalArgumentException(name + ": tensor type " + type + " is not supported by the CUDA backend");
        if (cols % kernelBlock(type) != 0) throw new IllegalArgumentException(name + ": " + cols + " columns, the CUDA kernels need a multiple of " + kernelBlock(type) + " for " + type);
        long bytes = type.byteSize((long) rows * cols);
        if (data.byteSize() < bytes) throw new IllegalArgumentException(name + ": " + type + " [" + rows + "x" + cols + "] needs " + bytes + " bytes, found " + data.byteSize());
        enter();
        long p = allocate(bytes);
        if (data.isNative()) {
            device.copyToDevice(p, data, bytes);
        } else {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment copy = a.allocate(bytes, 16);
                copy.copyFrom(data.asSlice(0, bytes));
                device.copyToDevice(p, copy, bytes);
            }
        }
        device.synchronize();
        return new CudaWeight(name, type, rows, cols, p, bytes);
    }

    @Override
    public Activations allocate(int maxTokens, int width) {
        enter();
        long bytes = 4L * maxTokens * width;
        long p = allocate(bytes);
        device.zero(p, bytes);
        return new CudaActivations(maxTokens, width, p);
    }

    @Override
    public KvCache allocateKvCache(int numLayers, int numKvHeads, int headDim, int capacity) {
        enter();
        CudaKvCache cache = new CudaKvCache(this, device, numLayers, numKvHeads * headDim, capacity);
        allocations.add(cache.pointer);
        allocations.add(cache.blockTable);
        return cache;
    }

    /**
     * 90% of the device memory free now (weights and activations are already allocated when the engine asks), less
     * 512 MiB for cuBLAS workspaces and the F16 copies prefill dequantizes into: vLLM's gpu_memory_utilization idea.
     */
    @Override
    public long defaultKvCacheBudget() {
        enter();
        return Math.max(0, (long) (device.freeBytes() * 0.9) - (512L << 20));
    }

    @Override
    public KvBlockStore allocateKvBlocks(int numLayers, int numKvHeads, int headDim, int blockSize, int numBlocks, KvCacheType type) {
        CudaKvBlockStore.validate(numLayers, numKvHeads, headDim, blockSize, numBlocks, type);
        requireEager("allocateKvBlocks");
        enter();
        deferred.flushPending();
        CudaKvBlockStore store = new CudaKvBlockStore(this, device, numLayers, numKvHeads * headDim, numBlocks, type);
        stores.add(store);
        return store;
    }

    void release(CudaKvBlockStore store) {
        requireEager("closing a KV block store");
        enter();
        if (!stores.remove(store)) return;
        device.synchronize();  // no queued kernel may still read the blocks or tables
        store.freeAll();
    }

    void release(CudaKvCache cache) {
        enter();
        // Graphs keyed by this cache stay until evicted: they read cache addresses from the staging buffer, never
        // from the graph, so a stale one is never replayed against freed memory (its key can no longer be equal).
        free(cache.pointer);
        free(cache.blockTable);
    }

    @Override
    public void upload(float[] src, Activations dst, int numTokens) {
        requireEager("upload");
        enter();
        deferred.flushPending();
        long bytes = 4L * numTokens * dst.width();
        MemorySegment host = bounce(bytes);
        MemorySegment.copy(src, 0, host, ValueLayout.JAVA_FLOAT, 0, numTokens * dst.width());
        device.copyToDevice(a(dst).pointer(), host, bytes);  // pageable source: staged before this returns, no wait
    }

    @Override
    public void download(Activations src, float[] dst, int numTokens) {
        requireEager("download");
        enter();
        deferred.flushPending();
        long bytes = 4L * numTokens * src.width();
        MemorySegment host = bounce(bytes);
        device.copyToHost(host, a(src).pointer(), bytes);
        device.synchronize();
        MemorySegment.copy(host, ValueLayout.JAVA_FLOAT, 0, dst, 0, numTokens * src.width());
    }

    // ---- ops ----

    @Override
    public void embed(Weight table, int[] tokens, int numTokens, Activations out) {
        CudaWeight w = (CudaWeight) table;
        for (int t = 0; t < numTokens; t++)
            if (tokens[t] < 0 || tokens[t] >= w.rows()) throw new IllegalArgumentException("token id " + tokens[t] + " outside vocabulary of " + w.rows());
        requireWidth(out, w.cols(), "embed " + w.name());
        enter();
        deferred.flushPending();
        steps.growStaging(numTokens);
        for (int t = 0; t < numTokens; t++) steps.stageInt(tokenOffset(steps.stagingTokens, t), tokens[t]);
        steps.flushStagingIfEager();
        if (steps.replaying()) return;
        kernels.args().ptr(w.pointer()).ptr(steps.stagingDevice).i32(steps.stagingTokens).ptr(a(out).pointer()).i32(w.cols())
                .launch(kernels.embed(w.type()), "embed", numTokens, 1, 128);
    }

    @Override
    public void rmsNorm(Activations x, Weight gamma, float eps, int numTokens, Activations out) {
        CudaWeight g = f32Vector(gamma, x.width());
        enter();
        deferred.flushPending();
        if (steps.replaying()) return;
        kernels.args().ptr(a(x).pointer()).ptr(g.pointer()).ptr(a(out).pointer()).i32(x.width()).f32(eps)
                .launch(kernels.rmsNorm, "rms_norm", numTokens, 1, 256);
    }

    @Override
    public void rmsNormHeads(Activations x, Weight gamma, float eps, int numTokens, int numHeads) {
        if (numHeads < 1 || x.width() % numHeads != 0)
            throw new IllegalStateException(gamma.name() + " applied to " + numHeads + " heads of a row of " + x.width());
        int headDim = x.width() / numHeads;
        CudaWeight g = f32Vector(gamma, headDim);
        enter();
        deferred.flushPending();
        if (steps.replaying()) return;
        // rms_norm reads its row before it writes it, so it runs in place; x[t] is numHeads rows of headDim.
        kernels.args().ptr(a(x).pointer()).ptr(g.pointer()).ptr(a(x).pointer()).i32(headDim).f32(eps)
                .launch(kernels.rmsNorm, "rms_norm", numTokens * numHeads, 1, 256);
    }

    @Override
    public void matmul(Weight w, Activations x, int numTokens, Activations out) {
        CudaWeight cw = (CudaWeight) w;
        if (cw.cols() != x.width() || cw.rows() != out.width())
            throw new IllegalStateException(w.name() + " [" + cw.rows() + "x" + cw.cols() + "] applied to width " + x.width() + " into " + out.width());
        enter();
        if (numTokens > MAX_MATVEC_TOKENS) {
            deferred.flushPending();
            if (!steps.replaying()) gemm.run(cw, a(x), numTokens, a(out));
            return;
        }
        deferred.matmul(cw, a(x), numTokens, a(out));
    }

    @Override
    public void addBias(Activations x, Weight bias, int numTokens) {
        CudaWeight b = f32Vector(bias, x.width());
        enter();
        deferred.flushPending();
        if (steps.replaying()) return;
        long n = (long) numTokens * x.width();
        kernels.args().ptr(a(x).pointer()).ptr(b.pointer()).i32(x.width()).i64(n)
                .launch(kernels.addBias, "add_bias", elementwiseBlocks(n), 1, ELEMENTWISE_THREADS);
    }

    @Override
    public void rope(Activations x, int numTokens, int numHeads, int headDim, int[] positions, RopeTable rope) {
        if (numHeads * headDim > x.width() || rope.ropeDim() > headDim)
            throw new IllegalStateException("rope of " + numHeads + " heads of " + headDim + " (rope dim " + rope.ropeDim() + ") on width " + x.width());
        enter();
        deferred.rope(a(x), numTokens, numHeads, headDim, positions, rope);
    }

    @Override
    public void swiglu(Activations gate, Activations up, int numTokens) {
        enter();
        if (deferred.fuseSwiglu(a(gate), a(up), numTokens)) return;
        if (steps.replaying()) return;
        long n = (long) numTokens * gate.width();
        kernels.args().ptr(a(gate).pointer()).ptr(a(up).pointer()).i64(n)
                .launch(kernels.swiglu, "swiglu", elementwiseBlocks(n), 1, ELEMENTWISE_THREADS);
    }

    @Override
    public void add(Activations acc, Activations x, int numTokens) {
        enter();
        if (deferred.fuseAdd(a(acc), a(x), numTokens)) return;
        if (steps.replaying()) return;
        long n = (long) numTokens * acc.width();
        kernels.args().ptr(a(acc).pointer()).ptr(a(x).pointer()).i64(n)
                .launch(kernels.add, "add", elementwiseBlocks(n), 1, ELEMENTWISE_THREADS);
    }

    @Override
    public void attention(int layer, Activations q, Activations k, Activations v, AttentionBatch batch,
                          int numHeads, int numKvHeads, int headDim, Activations out) {
        enter();
        attention.launch(layer, q, k, v, batch, numHeads, numKvHeads, headDim, out);
    }

    // ---- mixture of experts (CudaExperts); routing stays on the host, Backend's default ----

    /** Every format the matmul reads: an expert's batch runs through {@link #matmul}. */
    @Override
    public boolean supportsExperts(TensorType type) {
        return formatSuffix(type) != null;
    }

    @Override
    public void matmulExperts(Weight[] weights, Activations x, boolean xPerSlot, ExpertRouting routing, Activations out) {
        enter();
        experts.matmul(weights, a(x), xPerSlot, routing, a(out));
    }

    @Override
    public void matmulExpertsGateUp(Weight[] gate, Weight[] up, Activations x, ExpertRouting routing, Activations gateOut, Activations upOut) {
        enter();
        experts.matmulGateUp(gate, up, a(x), routing, a(gateOut), a(upOut));
    }

    @Override
    public void combineExperts(Activations slots, ExpertRouting routing, Activations acc) {
        enter();
        experts.combine(a(slots), routing, a(acc));
    }

    @Override
    public void addSigmoidGated(Activations acc, Activations x, Activations gate, int numTokens) {
        enter();
        experts.addSigmoidGated(a(acc), a(x), a(gate), numTokens);
    }

    // ---- sampling on the device ----

    @Override
    public void argmax(Activations logits, int numRows, int[] out) {
        requireEager("argmax");
        enter();
        deferred.flushPending();
        sampling.argmax(a(logits), numRows, out);
    }

    /**
     * Samples row r from its top {@code topK} logits (at most 256) at {@code temperature}, cut to the smallest prefix
     * holding {@code topP} of their probability, with the uniform number {@code uniforms[r]} in [0, 1).
     */
    public void sampleTopKTopP(Activations logits, int numRows, int topK, float topP, float temperature, float[] uniforms, int[] out) {
        requireEager("sampleTopKTopP");
        if (!(temperature > 0)) throw new IllegalArgumentException("temperature " + temperature + " must be positive; use argmax for greedy");
        enter();
        deferred.flushPending();
        sampling.sampleTopKTopP(a(logits), numRows, topK, topP, temperature, uniforms, out);
    }

    // ---- steps and graphs ----

    /**
     * Starts a step whose launches are identical whenever {@code shapeKey} is equal (same model, same buffers, same
     * token count, same cache): the first such step is captured into a CUDA graph, later ones replay it. A null key
     * runs eagerly. Between beginStep and endStep only ops may be called (no upload/download).
     */
    @Override
    public void beginStep(Object shapeKey, int numTokens) {
        if (!steps.eager()) throw new IllegalStateException("beginStep inside a step");
        deferred.flushPending();
        if (shapeKey == null || kernels.profiling()) return;  // profiling times each launch, so nothing is captured
        enter();
        steps.begin(shapeKey, numTokens);
    }

    @Override
    public void endStep() {
        if (steps.eager()) {
            deferred.flushPending();
            return;
        }
        enter();
        deferred.flushPending();
        steps.end();
    }

    @Override
    public void abortStep() {
        steps.abort();
        // Drop what the failed step deferred, but upload its block tables: the stores already count them as there.
        deferred.discard();
        steps.flushTables();
    }

    /**
     * Times every kernel launch (synchronizing before and after, graphs off) until switched off; for finding where a
     * step's time goes, not for production.
     */
    public void profile(boolean on) {
        kernels.profile(on);
    }

    /** Kernel name (layer number dropped) → {launches, nanoseconds} since {@code profile(true)}. */
    public java.util.Map<String, long[]> profileResults() {
        return kernels.profileResults();
    }

    /** Number of captured graphs held (for tests). */
    int numGraphs() {
        return steps.numGraphs();
    }

    // ---- collectives (NcclCollective) ----

    CudaDevice device() {
        enter();
        return device;
    }

    /**
     * The stream a device collective enqueues on, after whatever launches are deferred (so it reads their results);
     * null while a recorded step replays, since the graph already holds the collective's launch.
     */
    MemorySegment collectiveStream() {
        enter();
        deferred.flushPending();
        return steps.replaying() ? null : device.stream;
    }

    /** True between beginStep with a key and endStep: launches are being captured or replayed. */
    boolean recording() {
        return !steps.eager();
    }

    // ---- helpers ----

    long ropeTable(RopeTable rope) {
        Long p = ropeTables.get(rope);
        if (p != null) return p;
        long bytes = 4L * rope.invFreq().length;
        long d = allocate(bytes);
        try (Arena a = Arena.ofConfined()) {
            // Synchronous copy outside the stream: allowed while a graph is being captured (relaxed mode).
            check(cuda_h.cuMemcpyHtoD_v2(d, a.allocateFrom(ValueLayout.JAVA_FLOAT, rope.invFreq()), bytes), "cuMemcpyHtoD(rope table)");
        }
        ropeTables.put(rope, d);
        return d;
    }

    MemorySegment bounce(long bytes) {
        if (bounce.byteSize() < bytes) bounce = arena.allocate(Math.max(bytes, 2 * bounce.byteSize()), 16);
        return bounce;
    }

    long allocate(long bytes) {
        long p = device.allocate(bytes);
        allocations.add(p);
        return p;
    }

    void free(long p) {
        if (p != 0 && allocations.remove(p)) device.free(p);
    }

    private void enter() {
        Thread t = Thread.currentThread();
        if (t != currentThread) {
            device.makeCurrent();
            currentThread = t;
        }
    }

    private void requireEager(String what) {
        if (!steps.eager()) throw new IllegalStateException(what + " inside a captured step; call endStep first");
    }

    private static void requireWidth(Activations x, int width, String what) {
        if (x.width() != width) throw new IllegalStateException(what + ": width " + x.width() + ", expected " + width);
    }

    private static CudaWeight f32Vector(Weight w, int width) {
        CudaWeight c = (CudaWeight) w;
        if (c.type() != TensorType.F32 || (long) c.rows() * c.cols() < width)
            throw new IllegalArgumentException(w.name() + ": " + c.type() + " [" + c.rows() + "x" + c.cols() + "] used as an F32 vector of " + width);
        return c;
    }

    private static CudaActivations a(Activations x) {
        return (CudaActivations) x;
    }

    @Override
    public void close() {
        enter();
        abortStep();
        device.synchronize();
        steps.destroyGraphs();
        for (CudaKvBlockStore store : stores) store.freeAll();
        stores.clear();
        gemm.close();
        for (long p : allocations) device.free(p);
        allocations.clear();
        kernels.close();
        device.close();
        arena.close();
    }
}
