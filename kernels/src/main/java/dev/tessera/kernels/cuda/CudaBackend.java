package dev.tessera.kernels.cuda;

import dev.tessera.bindings.cublas.cublas_api_h;
import dev.tessera.bindings.cuda.cuda_h;
import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.RopeTable;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
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
 * <p>Per-step host data (token ids, positions, which cache each token uses) goes through a staging buffer: ops write
 * it on the host, it is copied to a fixed device buffer, and kernels read it there. That makes a step replayable: between
 * {@link #beginStep} with a key and {@link #endStep}, the first time the launches are captured into a CUDA graph; on
 * later steps with an equal key the ops only write the staging buffer and endStep copies it and replays the graph.
 *
 * <p>Single-threaded like the model that drives it. Not verified on a GPU where marked UNVERIFIED.
 */
public final class CudaBackend implements Backend {
    private static final int MAX_GRAPHS = 16;
    private static final int INITIAL_STAGING_TOKENS = 1024;

    private enum Mode { EAGER, CAPTURE, REPLAY }

    private final CudaDevice device;
    private final CudaKernels kernels;
    private final Arena arena = Arena.ofShared();
    private final Set<Long> allocations = new LinkedHashSet<>();
    private final Map<RopeTable, Long> ropeTables = new IdentityHashMap<>();
    private final LinkedHashMap<Object, MemorySegment> graphs = new LinkedHashMap<>(16, 0.75f, true);
    private final MemorySegment out = arena.allocate(ValueLayout.JAVA_LONG);
    private final MemorySegment one = arena.allocateFrom(ValueLayout.JAVA_FLOAT, 1f);
    private final MemorySegment zero = arena.allocateFrom(ValueLayout.JAVA_FLOAT, 0f);

    private Thread currentThread;
    private Mode mode = Mode.EAGER;
    private Object stepKey;
    private int stagingTokens;
    private MemorySegment stagingHost;
    private long stagingDevice;
    private boolean stagingDirty;
    private MemorySegment bounce = MemorySegment.NULL;
    private MemorySegment cublas;
    private long weightF16, weightF16Bytes, xF16, xF16Bytes, sampleBuffer, sampleBufferBytes;

    public CudaBackend(int deviceIndex) {
        this.device = new CudaDevice(deviceIndex);
        this.currentThread = Thread.currentThread();
        this.kernels = new CudaKernels(device);
        growStaging(INITIAL_STAGING_TOKENS);
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

    @Override
    public dev.tessera.kernels.KvBlockStore allocateKvBlocks(int numLayers, int numKvHeads, int headDim, int blockSize, int numBlocks, dev.tessera.kernels.KvCacheType type) {
        throw new UnsupportedOperationException("a paged KV store on CUDA is not implemented yet");
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
        long bytes = 4L * numTokens * dst.width();
        MemorySegment host = bounce(bytes);
        MemorySegment.copy(src, 0, host, ValueLayout.JAVA_FLOAT, 0, numTokens * dst.width());
        device.copyToDevice(a(dst).pointer(), host, bytes);
        device.synchronize();
    }

    @Override
    public void download(Activations src, float[] dst, int numTokens) {
        requireEager("download");
        enter();
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
        growStaging(numTokens);
        for (int t = 0; t < numTokens; t++) stageInt(tokenOffset(stagingTokens, t), tokens[t]);
        flushStagingIfEager();
        if (mode == Mode.REPLAY) return;
        kernels.args().ptr(w.pointer()).ptr(stagingDevice).i32(stagingTokens).ptr(a(out).pointer()).i32(w.cols())
                .launch(kernels.embed(w.type()), "embed", numTokens, 1, 128);
    }

    @Override
    public void rmsNorm(Activations x, Weight gamma, float eps, int numTokens, Activations out) {
        CudaWeight g = f32Vector(gamma, x.width());
        enter();
        if (mode == Mode.REPLAY) return;
        kernels.args().ptr(a(x).pointer()).ptr(g.pointer()).ptr(a(out).pointer()).i32(x.width()).f32(eps)
                .launch(kernels.rmsNorm, "rms_norm", numTokens, 1, 256);
    }

    @Override
    public void matmul(Weight w, Activations x, int numTokens, Activations out) {
        CudaWeight cw = (CudaWeight) w;
        if (cw.cols() != x.width() || cw.rows() != out.width())
            throw new IllegalStateException(w.name() + " [" + cw.rows() + "x" + cw.cols() + "] applied to width " + x.width() + " into " + out.width());
        enter();
        if (mode == Mode.REPLAY) return;
        if (numTokens <= MAX_MATVEC_TOKENS) {
            int tier = matvecTier(numTokens);
            kernels.args().ptr(cw.pointer()).ptr(a(x).pointer()).ptr(a(out).pointer()).i32(cw.rows()).i32(cw.cols()).i32(numTokens)
                    .launch(kernels.matvec(cw.type(), tier), "matvec " + cw.name(), matvecBlocks(cw.rows()), 1, MATVEC_THREADS);
        } else {
            gemm(cw, a(x), numTokens, a(out));
        }
    }

    /** out = x · Wᵀ with W dequantized to F16; cuBLAS is column-major, so it computes outᵀ[rows][T] = W · xᵀ. */
    private void gemm(CudaWeight w, CudaActivations x, int numTokens, CudaActivations out) {
        if (mode != Mode.EAGER) throw new IllegalStateException("a " + numTokens + "-token matmul inside a captured step");
        long wBytes = 2L * w.rows() * w.cols(), xBytes = 2L * numTokens * w.cols();
        if (wBytes > weightF16Bytes) { free(weightF16); weightF16 = allocate(wBytes); weightF16Bytes = wBytes; }
        if (xBytes > xF16Bytes) { free(xF16); xF16 = allocate(xBytes); xF16Bytes = xBytes; }
        long units = w.rows() * unitsPerRow(w.type(), w.cols());
        kernels.args().ptr(w.pointer()).ptr(weightF16).i32(w.rows()).i32(w.cols())
                .launch(kernels.dequantF16(w.type()), "dequant_f16 " + w.name(), elementwiseBlocks(units), 1, ELEMENTWISE_THREADS);
        long n = (long) numTokens * w.cols();
        kernels.args().ptr(x.pointer()).ptr(xF16).i64(n)
                .launch(kernels.convertF32ToF16, "convert_f32_to_f16", elementwiseBlocks(n), 1, ELEMENTWISE_THREADS);
        // UNVERIFIED (no GPU here): argument order and leading dimensions of the column-major GEMM.
        CudaException.checkBlas(cublas_api_h.cublasGemmEx(cublas(), cublas_api_h.CUBLAS_OP_T, cublas_api_h.CUBLAS_OP_N,
                w.rows(), numTokens, w.cols(), one,
                MemorySegment.ofAddress(weightF16), cublas_api_h.CUDA_R_16F, w.cols(),
                MemorySegment.ofAddress(xF16), cublas_api_h.CUDA_R_16F, w.cols(), zero,
                MemorySegment.ofAddress(out.pointer()), cublas_api_h.CUDA_R_32F, w.rows(),
                cublas_api_h.CUBLAS_COMPUTE_32F, cublas_api_h.CUBLAS_GEMM_DEFAULT), "cublasGemmEx(" + w.name() + ")");
    }

    @Override
    public void addBias(Activations x, Weight bias, int numTokens) {
        CudaWeight b = f32Vector(bias, x.width());
        enter();
        if (mode == Mode.REPLAY) return;
        long n = (long) numTokens * x.width();
        kernels.args().ptr(a(x).pointer()).ptr(b.pointer()).i32(x.width()).i64(n)
                .launch(kernels.addBias, "add_bias", elementwiseBlocks(n), 1, ELEMENTWISE_THREADS);
    }

    @Override
    public void rope(Activations x, int numTokens, int numHeads, int headDim, int[] positions, RopeTable rope) {
        if (numHeads * headDim > x.width() || rope.ropeDim() > headDim)
            throw new IllegalStateException("rope of " + numHeads + " heads of " + headDim + " (rope dim " + rope.ropeDim() + ") on width " + x.width());
        enter();
        growStaging(numTokens);
        for (int t = 0; t < numTokens; t++) stageInt(positionOffset(stagingTokens, t), positions[t]);
        flushStagingIfEager();
        if (mode == Mode.REPLAY) return;
        long invFreq = ropeTable(rope);
        int half = rope.ropeDim() / 2;
        kernels.args().ptr(a(x).pointer()).ptr(stagingDevice).i32(stagingTokens).i32(x.width()).i32(numHeads).i32(headDim)
                .i32(rope.ropeDim()).ptr(invFreq).i32(rope.neox() ? 1 : 0)
                .launch(kernels.rope, "rope", numTokens, 1, rowThreads(numHeads * half, 256));
    }

    @Override
    public void swiglu(Activations gate, Activations up, int numTokens) {
        enter();
        if (mode == Mode.REPLAY) return;
        long n = (long) numTokens * gate.width();
        kernels.args().ptr(a(gate).pointer()).ptr(a(up).pointer()).i64(n)
                .launch(kernels.swiglu, "swiglu", elementwiseBlocks(n), 1, ELEMENTWISE_THREADS);
    }

    @Override
    public void add(Activations acc, Activations x, int numTokens) {
        enter();
        if (mode == Mode.REPLAY) return;
        long n = (long) numTokens * acc.width();
        kernels.args().ptr(a(acc).pointer()).ptr(a(x).pointer()).i64(n)
                .launch(kernels.add, "add", elementwiseBlocks(n), 1, ELEMENTWISE_THREADS);
    }

    @Override
    public void attention(int layer, Activations q, Activations k, Activations v, AttentionBatch batch,
                          int numHeads, int numKvHeads, int headDim, Activations out) {
        int numTokens = batch.numTokens();
        int kvDim = numKvHeads * headDim;
        if (headDim > MAX_HEAD_DIM || numHeads % numKvHeads != 0)
            throw new IllegalArgumentException("attention with " + numHeads + " heads, " + numKvHeads + " KV heads of " + headDim + ": CUDA kernels need headDim <= " + MAX_HEAD_DIM + " and whole groups");
        requireWidth(k, kvDim, "attention keys");
        requireWidth(v, kvDim, "attention values");
        requireWidth(q, numHeads * headDim, "attention queries");
        requireWidth(out, numHeads * headDim, "attention output");
        enter();
        growStaging(numTokens);
        CudaKvCache first = (CudaKvCache) batch.sequences()[0];
        boolean oneSequence = true;
        for (int t = 0; t < numTokens; t++) {
            CudaKvCache cache = (CudaKvCache) batch.sequences()[t];
            int pos = batch.positions()[t];
            if (cache.closed()) throw new IllegalStateException("attention on a closed KV cache");
            if (pos < 0 || pos >= cache.capacity) throw new IllegalStateException("position " + pos + " beyond KV capacity " + cache.capacity);
            if (cache.kvDim != kvDim || cache.numLayers != first.numLayers || layer >= cache.numLayers)
                throw new IllegalStateException("KV cache of " + cache.numLayers + " layers x " + cache.kvDim + " used for layer " + layer + " x " + kvDim);
            oneSequence &= cache == first;
            stageLong(cacheBaseOffset(stagingTokens, t), cache.pointer);
            stageLong(blockTableOffset(stagingTokens, t), cache.blockTable);
            stageInt(numBlocksOffset(stagingTokens, t), cache.numBlocks);
            stageInt(positionOffset(stagingTokens, t), pos);
        }
        flushStagingIfEager();
        if (mode == Mode.REPLAY) return;
        kernels.args().ptr(a(k).pointer()).ptr(a(v).pointer()).ptr(stagingDevice).i32(stagingTokens).i32(layer)
                .i32(first.numLayers).i32(kvDim)
                .launch(kernels.kvStore, "kv_store", numTokens, 1, 128);
        if (numTokens > 1 && oneSequence) {
            kernels.args().ptr(a(q).pointer()).ptr(a(out).pointer()).ptr(stagingDevice).i32(stagingTokens).i32(numTokens)
                    .i32(layer).i32(first.numLayers).i32(numHeads).i32(numKvHeads).i32(headDim)
                    .launch(kernels.attentionPrefill, "attention_prefill", numHeads, prefillBlocksY(numTokens), PREFILL_THREADS);
        } else {
            kernels.args().ptr(a(q).pointer()).ptr(a(out).pointer()).ptr(stagingDevice).i32(stagingTokens)
                    .i32(layer).i32(first.numLayers).i32(numHeads).i32(numKvHeads).i32(headDim)
                    .launch(kernels.attentionDecode, "attention_decode", numHeads, numTokens, DECODE_THREADS);
        }
    }

    // ---- sampling on the device ----

    /** out[r] = index of the largest logit of row r (ties to the lowest index). */
    public void argmax(Activations logits, int numRows, int[] out) {
        requireEager("argmax");
        enter();
        long buf = sampleBuffer(8L * numRows);
        kernels.args().ptr(a(logits).pointer()).i32(logits.width()).ptr(buf)
                .launch(kernels.argmax, "argmax", numRows, 1, SAMPLE_THREADS);
        readInts(buf, out, numRows);
    }

    /**
     * Samples row r from its top {@code topK} logits (at most 256) at {@code temperature}, cut to the smallest prefix
     * holding {@code topP} of their probability, with the uniform number {@code uniforms[r]} in [0, 1).
     */
    public void sampleTopKTopP(Activations logits, int numRows, int topK, float topP, float temperature, float[] uniforms, int[] out) {
        requireEager("sampleTopKTopP");
        if (!(temperature > 0)) throw new IllegalArgumentException("temperature " + temperature + " must be positive; use argmax for greedy");
        enter();
        long buf = sampleBuffer(8L * numRows);
        MemorySegment host = bounce(4L * numRows);
        MemorySegment.copy(uniforms, 0, host, ValueLayout.JAVA_FLOAT, 0, numRows);
        device.copyToDevice(buf + 4L * numRows, host, 4L * numRows);
        kernels.args().ptr(a(logits).pointer()).i32(logits.width()).i32(topK).f32(topP).f32(temperature)
                .ptr(buf + 4L * numRows).ptr(buf)
                .launch(kernels.sampleTopKTopP, "sample_top_k_top_p", numRows, 1, SAMPLE_THREADS);
        readInts(buf, out, numRows);
    }

    private void readInts(long src, int[] dst, int n) {
        MemorySegment host = bounce(4L * n);
        device.copyToHost(host, src, 4L * n);
        device.synchronize();
        MemorySegment.copy(host, ValueLayout.JAVA_INT, 0, dst, 0, n);
    }

    // ---- steps and graphs ----

    /**
     * Starts a step whose launches are identical whenever {@code shapeKey} is equal (same model, same buffers, same
     * token count, same cache): the first such step is captured into a CUDA graph, later ones replay it. A null key
     * runs eagerly. Between beginStep and endStep only ops may be called (no upload/download).
     */
    @Override
    public void beginStep(Object shapeKey) {
        if (mode != Mode.EAGER) throw new IllegalStateException("beginStep inside a step");
        if (shapeKey == null || kernels.profiling()) return;  // profiling times each launch, so nothing is captured
        enter();
        stepKey = shapeKey;
        if (graphs.containsKey(shapeKey)) {
            mode = Mode.REPLAY;
        } else {
            // UNVERIFIED (no GPU here): relaxed mode so a first-use upload (rope table) may happen mid-capture.
            check(cuda_h.cuStreamBeginCapture_v2(device.stream, cuda_h.CU_STREAM_CAPTURE_MODE_RELAXED), "cuStreamBeginCapture");
            mode = Mode.CAPTURE;
        }
    }

    @Override
    public void endStep() {
        if (mode == Mode.EAGER) return;
        enter();
        MemorySegment exec;
        if (mode == Mode.CAPTURE) {
            mode = Mode.EAGER;
            check(cuda_h.cuStreamEndCapture(device.stream, out), "cuStreamEndCapture");
            MemorySegment graph = out.get(ValueLayout.ADDRESS, 0);
            try {
                check(cuda_h.cuGraphInstantiateWithFlags(out, graph, 0), "cuGraphInstantiateWithFlags");
            } finally {
                cuda_h.cuGraphDestroy(graph);
            }
            exec = out.get(ValueLayout.ADDRESS, 0);
            graphs.put(stepKey, exec);
            if (graphs.size() > MAX_GRAPHS) {
                var eldest = graphs.entrySet().iterator().next();
                cuda_h.cuGraphExecDestroy(eldest.getValue());
                graphs.remove(eldest.getKey());
            }
        } else {
            mode = Mode.EAGER;
            exec = graphs.get(stepKey);
        }
        stepKey = null;
        flushStagingIfEager();
        check(cuda_h.cuGraphLaunch(exec, device.stream), "cuGraphLaunch");
    }

    @Override
    public void abortStep() {
        if (mode == Mode.CAPTURE) {
            if (cuda_h.cuStreamEndCapture(device.stream, out) == cuda_h.CUDA_SUCCESS) {
                MemorySegment graph = out.get(ValueLayout.ADDRESS, 0);
                if (!graph.equals(MemorySegment.NULL)) cuda_h.cuGraphDestroy(graph);
            }
        }
        mode = Mode.EAGER;
        stepKey = null;
        stagingDirty = true;
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
        return graphs.size();
    }

    // ---- staging ----

    private void growStaging(int numTokens) {
        if (numTokens <= stagingTokens) return;
        int n = Math.max(numTokens, 2 * stagingTokens);
        if (mode != Mode.EAGER) throw new IllegalStateException("staging buffer grows from " + stagingTokens + " to " + n + " tokens inside a step");
        // Graphs hold the old device address: drop them.
        for (MemorySegment exec : graphs.values()) cuda_h.cuGraphExecDestroy(exec);
        graphs.clear();
        device.synchronize();
        free(stagingDevice);
        stagingTokens = n;
        stagingHost = arena.allocate((long) STAGING_BYTES_PER_TOKEN * n, 8);
        stagingDevice = allocate((long) STAGING_BYTES_PER_TOKEN * n);
        stagingDirty = true;
    }

    private void stageInt(long offset, int value) {
        if (stagingHost.get(ValueLayout.JAVA_INT, offset) != value) {
            stagingHost.set(ValueLayout.JAVA_INT, offset, value);
            stagingDirty = true;
        }
    }

    private void stageLong(long offset, long value) {
        if (stagingHost.get(ValueLayout.JAVA_LONG, offset) != value) {
            stagingHost.set(ValueLayout.JAVA_LONG, offset, value);
            stagingDirty = true;
        }
    }

    /** Copies the staging buffer in stream order, before the kernels queued next; inside a step endStep does it. */
    private void flushStagingIfEager() {
        if (mode != Mode.EAGER || !stagingDirty) return;
        device.copyToDevice(stagingDevice, stagingHost, stagingHost.byteSize());
        stagingDirty = false;
    }

    // ---- helpers ----

    private long ropeTable(RopeTable rope) {
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

    private MemorySegment cublas() {
        if (cublas == null) {
            CudaException.checkBlas(cublas_api_h.cublasCreate_v2(out), "cublasCreate");
            MemorySegment handle = out.get(ValueLayout.ADDRESS, 0);
            CudaException.checkBlas(cublas_api_h.cublasSetStream_v2(handle, device.stream), "cublasSetStream");
            cublas = handle;
        }
        return cublas;
    }

    private long sampleBuffer(long bytes) {
        if (bytes > sampleBufferBytes) {
            free(sampleBuffer);
            sampleBuffer = allocate(bytes);
            sampleBufferBytes = bytes;
        }
        return sampleBuffer;
    }

    private MemorySegment bounce(long bytes) {
        if (bounce.byteSize() < bytes) bounce = arena.allocate(Math.max(bytes, 2 * bounce.byteSize()), 16);
        return bounce;
    }

    private long allocate(long bytes) {
        long p = device.allocate(bytes);
        allocations.add(p);
        return p;
    }

    private void free(long p) {
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
        if (mode != Mode.EAGER) throw new IllegalStateException(what + " inside a captured step; call endStep first");
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
        for (MemorySegment exec : graphs.values()) cuda_h.cuGraphExecDestroy(exec);
        graphs.clear();
        if (cublas != null) cublas_api_h.cublasDestroy_v2(cublas);
        for (long p : allocations) device.free(p);
        allocations.clear();
        kernels.close();
        device.close();
        arena.close();
    }
}
