package dev.tessera.kernels.cuda;

import dev.tessera.bindings.cublas.cublas_api_h;
import dev.tessera.bindings.cuda.cuda_h;
import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.PagedKvCache;
import dev.tessera.kernels.RopeTable;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
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
 * <p>Some launches are deferred by one op so that neighbours fuse into one kernel: matmuls reading the same input
 * (Q, K, V; gate, up) run as one matvec launch; a matvec followed by {@code add} of its output into the residual, or
 * gate and up followed by {@code swiglu}, finish in the matvec's epilogue; rope of q and k followed by attention run
 * in the KV-store kernel. Results are the ones the separate kernels give. Any other op, endStep and every host
 * transfer launch what is pending first, so the order of effects is unchanged.
 *
 * <p>KV memory comes in two kinds that attention takes in any mix of sequences: private {@link CudaKvCache}s and
 * {@link PagedKvCache}s over a shared {@link CudaKvBlockStore} (F32 or F16; one element type per batch). Each paged
 * sequence's block table lives on the device and is re-uploaded when its version changes: at once when eager, at
 * endStep (before the graph runs) inside a captured or replayed step, since a host copy may not be captured.
 *
 * <p>Single-threaded like the model that drives it. Not verified on a GPU where marked UNVERIFIED.
 */
public final class CudaBackend implements Backend {
    private static final int MAX_GRAPHS = 64;  // decode steps of 1..16 tokens, with and without the classifier, per cache kind
    private static final int INITIAL_STAGING_TOKENS = 1024;
    /** Blocks per (token, head) of split-K decode attention; {@code -Dtessera.cuda.decodeSplits} for tuning runs. */
    static final int DECODE_SPLITS = LaunchGeometry.tuning("tessera.cuda.decodeSplits", 16, 1, 16);
    static final int MAX_SPLIT_TOKENS = 16;
    // Epilogues of the matvec kernel (MATVEC_STORE, MATVEC_RESIDUAL, MATVEC_SWIGLU in matvec.cuh).
    private static final int MATVEC_STORE = 0, MATVEC_RESIDUAL = 1, MATVEC_SWIGLU = 2;

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
    /** Bytes [stagingDirtyFrom, stagingDirtyTo) of the staging buffer changed since the last copy to the device. */
    private long stagingDirtyFrom, stagingDirtyTo;
    private MemorySegment bounce = MemorySegment.NULL;
    private MemorySegment cublas;
    private long weightF16, weightF16Bytes, xF16, xF16Bytes, sampleBuffer, sampleBufferBytes;
    private long decodePartial, decodePartialBytes, decodeCounters, decodeCountersBytes;
    private final Set<CudaKvBlockStore> stores = new LinkedHashSet<>();
    /** Block tables to copy at endStep: device address and the ids as of the step. */
    private final List<PendingTable> pendingTables = new ArrayList<>();

    // Deferred launches (see the class comment): up to three matmuls over one input, or up to two ropes.
    private final CudaWeight[] pendingWeights = new CudaWeight[3];
    private final CudaActivations[] pendingOuts = new CudaActivations[3];
    private int numPendingMatmuls, pendingMatmulTokens;
    private CudaActivations pendingMatmulInput;
    private final List<PendingRope> pendingRopes = new ArrayList<>(2);

    private record PendingTable(long pointer, int[] ids) {}

    /** A rope whose positions are already staged; launched on its own, or fused into attention's KV store. */
    private record PendingRope(CudaActivations x, int numTokens, int numHeads, int headDim, RopeTable rope) {}

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
        flushPending();
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
        flushPending();
        long bytes = 4L * numTokens * dst.width();
        MemorySegment host = bounce(bytes);
        MemorySegment.copy(src, 0, host, ValueLayout.JAVA_FLOAT, 0, numTokens * dst.width());
        device.copyToDevice(a(dst).pointer(), host, bytes);  // pageable source: staged before this returns, no wait
    }

    @Override
    public void download(Activations src, float[] dst, int numTokens) {
        requireEager("download");
        enter();
        flushPending();
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
        flushPending();
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
        flushPending();
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
        if (numTokens > MAX_MATVEC_TOKENS) {
            flushPending();
            if (mode != Mode.REPLAY) gemm(cw, a(x), numTokens, a(out));
            return;
        }
        flushRopes();
        CudaActivations in = a(x), o = a(out);
        boolean joins = numPendingMatmuls > 0 && numPendingMatmuls < pendingWeights.length && pendingMatmulInput == in
                && pendingMatmulTokens == numTokens && pendingWeights[0].type() == cw.type() && pendingWeights[0].cols() == cw.cols()
                && o != in && !pendingOut(o);
        if (!joins) flushMatmuls();
        pendingWeights[numPendingMatmuls] = cw;
        pendingOuts[numPendingMatmuls] = o;
        numPendingMatmuls++;
        pendingMatmulInput = in;
        pendingMatmulTokens = numTokens;
    }

    private boolean pendingOut(CudaActivations o) {
        for (int i = 0; i < numPendingMatmuls; i++) if (pendingOuts[i] == o) return true;
        return false;
    }

    /** Launches the pending matmuls as one matvec with the given epilogue (acc: the residual, for MATVEC_RESIDUAL). */
    private void launchMatvec(int epilogue, CudaActivations acc) {
        int n = numPendingMatmuls;
        if (n == 0) return;
        CudaActivations in = pendingMatmulInput;
        numPendingMatmuls = 0;
        pendingMatmulInput = null;
        if (mode == Mode.REPLAY) {
            Arrays.fill(pendingWeights, null);
            Arrays.fill(pendingOuts, null);
            return;
        }
        CudaWeight w0 = pendingWeights[0];
        int split = matvecSplit(w0.cols(), pendingMatmulTokens);
        int blocks = 0;
        long weightRows = 0;
        StringBuilder name = new StringBuilder("matvec ");
        kernels.args();
        for (int i = 0; i < pendingWeights.length; i++) {
            if (i < n) {
                CudaWeight w = pendingWeights[i];
                kernels.ptr(w.pointer()).ptr(pendingOuts[i].pointer()).i32(w.rows());
                weightRows += w.rows();
                if (epilogue != MATVEC_SWIGLU) blocks += matvecBlocks(w.rows(), split);
                name.append(i == 0 ? "" : "+").append(w.name());
            } else {
                kernels.ptr(0).ptr(0).i32(0);
            }
            pendingWeights[i] = null;
            pendingOuts[i] = null;
        }
        if (epilogue == MATVEC_SWIGLU) blocks = matvecBlocks(w0.rows(), split);
        if (epilogue == MATVEC_RESIDUAL) name.append(" +add");
        if (epilogue == MATVEC_SWIGLU) name.append(" +swiglu");
        kernels.ptr(acc == null ? 0 : acc.pointer()).i32(epilogue).ptr(in.pointer()).i32(w0.cols()).i32(pendingMatmulTokens).i32(split)
                .i32(prefetchBytesPerRow(w0, weightRows)).launch(kernels.matvec(w0.type(), matvecTier(pendingMatmulTokens)), name.toString(), blocks, 1, MATVEC_THREADS);
    }

    /**
     * How many leading bytes of each weight row a matvec block pulls into L2 before waiting for the previous kernel.
     * All of the launch's weights share a budget ({@code -Dtessera.cuda.prefetchMiB}, default 8): enough to keep HBM
     * busy while a short kernel (a norm, attention) drains; more evicts itself from the 50 MiB L2. On the H100,
     * batch-1 decode in tok/s with 0, 8, 16 and 32 MiB was Q4_0 823-841, 865-869, 850-861, 875 and F16 708-736,
     * 717-721, 695-703, 649. F16 does not gain (device time per step 1,282 us without, 1,301-1,317 with 8 MiB), so
     * only block-quantized weights prefetch.
     */
    private int prefetchBytesPerRow(CudaWeight w0, long weightRows) {
        if (kernels.prefetchBudgetBytes <= 0 || w0.type().blockSize == 1) return 0;  // plain floats (F32, F16, BF16)
        long rowBytes = w0.sizeBytes() / w0.rows();
        long perRow = Math.min(rowBytes, kernels.prefetchBudgetBytes / Math.max(1, weightRows));
        return (int) (perRow / 128 * 128);
    }

    private void flushMatmuls() {
        launchMatvec(MATVEC_STORE, null);
    }

    private void flushRopes() {
        for (PendingRope r : pendingRopes) {
            if (mode == Mode.REPLAY) continue;
            long invFreq = ropeTable(r.rope());
            int half = r.rope().ropeDim() / 2;
            kernels.args().ptr(r.x().pointer()).ptr(stagingDevice).i32(stagingTokens).i32(r.x().width()).i32(r.numHeads()).i32(r.headDim())
                    .i32(r.rope().ropeDim()).ptr(invFreq).i32(r.rope().neox() ? 1 : 0)
                    .launch(kernels.rope, "rope", r.numTokens(), 1, rowThreads(r.numHeads() * half, 256));
        }
        pendingRopes.clear();
    }

    /** Launches whatever is deferred, in call order (matmuls and ropes are never pending together). */
    private void flushPending() {
        flushMatmuls();
        flushRopes();
    }

    /** True when the staging buffer holds exactly these positions for tokens [0, n): what a pending rope will read. */
    private boolean stagedPositionsEqual(int[] positions, int n) {
        if (n > stagingTokens) return false;
        for (int t = 0; t < n; t++) if (stagingHost.get(ValueLayout.JAVA_INT, positionOffset(stagingTokens, t)) != positions[t]) return false;
        return true;
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
        flushPending();
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
        flushMatmuls();
        CudaActivations xs = a(x);
        // A pending rope reads the positions staged now, so one with other positions (or tokens) goes first.
        boolean joins = pendingRopes.size() == 1 && pendingRopes.getFirst().numTokens() == numTokens && pendingRopes.getFirst().x() != xs
                && stagedPositionsEqual(positions, numTokens);
        if (!joins) flushRopes();
        growStaging(numTokens);
        for (int t = 0; t < numTokens; t++) stageInt(positionOffset(stagingTokens, t), positions[t]);
        flushStagingIfEager();
        pendingRopes.add(new PendingRope(xs, numTokens, numHeads, headDim, rope));
    }

    @Override
    public void swiglu(Activations gate, Activations up, int numTokens) {
        enter();
        flushRopes();
        if (numPendingMatmuls == 2 && pendingOuts[0] == gate && pendingOuts[1] == up && pendingMatmulTokens == numTokens
                && pendingWeights[0].rows() == pendingWeights[1].rows() && gate.width() == up.width()) {
            launchMatvec(MATVEC_SWIGLU, null);
            return;
        }
        flushMatmuls();
        if (mode == Mode.REPLAY) return;
        long n = (long) numTokens * gate.width();
        kernels.args().ptr(a(gate).pointer()).ptr(a(up).pointer()).i64(n)
                .launch(kernels.swiglu, "swiglu", elementwiseBlocks(n), 1, ELEMENTWISE_THREADS);
    }

    @Override
    public void add(Activations acc, Activations x, int numTokens) {
        enter();
        flushRopes();
        CudaActivations ac = a(acc);
        if (numPendingMatmuls == 1 && pendingOuts[0] == x && pendingMatmulTokens == numTokens && ac != pendingMatmulInput
                && ac != x && acc.width() == x.width()) {
            launchMatvec(MATVEC_RESIDUAL, ac);
            return;
        }
        flushMatmuls();
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
        flushMatmuls();
        if (mode == Mode.EAGER) {
            for (CudaKvBlockStore s : stores) s.reclaim();
            ensureDecodeScratch(numHeads, headDim);
        }
        // rope(q), rope(k) just before, over these tokens at these (already staged) positions: rotate in the KV store.
        PendingRope ropeQ = null, ropeK = null;
        for (PendingRope r : pendingRopes) {
            if (r.x() == q) ropeQ = r;
            else if (r.x() == k) ropeK = r;
        }
        boolean fuseRope = pendingRopes.size() == 2 && ropeQ != null && ropeK != null && ropeQ.numTokens() == numTokens
                && ropeK.numTokens() == numTokens && ropeQ.numHeads() == numHeads && ropeK.numHeads() == numKvHeads
                && ropeQ.headDim() == headDim && ropeK.headDim() == headDim && ropeQ.rope() == ropeK.rope()
                && stagedPositionsEqual(batch.positions(), numTokens);
        RopeTable rope = fuseRope ? ropeQ.rope() : null;
        if (fuseRope) pendingRopes.clear();
        else flushRopes();
        growStaging(numTokens);
        KvCache first = batch.sequences()[0];
        KvCacheType type = null;
        int numLayers = -1;
        boolean oneSequence = true;
        for (int t = 0; t < numTokens; t++) {
            KvCache cache = batch.sequences()[t];
            int pos = batch.positions()[t];
            long base, table;
            int cacheBlocks, cacheLayers, cacheKvDim;
            KvCacheType cacheType;
            if (cache instanceof CudaKvCache c) {
                if (c.closed()) throw new IllegalStateException("attention on a closed KV cache");
                if (pos < 0 || pos >= c.capacity) throw new IllegalStateException("position " + pos + " beyond KV capacity " + c.capacity);
                base = c.pointer;
                table = c.blockTable;
                cacheBlocks = c.numBlocks;
                cacheLayers = c.numLayers;
                cacheKvDim = c.kvDim;
                cacheType = KvCacheType.F32;
            } else if (cache instanceof PagedKvCache p && p.store() instanceof CudaKvBlockStore s && stores.contains(s)) {
                if (pos < 0 || pos >= p.numBlocks() * KV_BLOCK)
                    throw new IllegalStateException("position " + pos + " beyond the sequence's " + p.numBlocks() + " KV blocks (" + p.numBlocks() * KV_BLOCK + " positions)");
                table = deviceTable(s, p);
                base = s.pointer;
                cacheBlocks = s.numBlocks;
                cacheLayers = s.numLayers;
                cacheKvDim = s.kvDim;
                cacheType = s.type;
            } else if (cache instanceof PagedKvCache p && p.store() instanceof CudaKvBlockStore s) {
                s.requireOpen();
                throw new IllegalArgumentException("a KV block store of another CUDA backend");
            } else {
                throw new IllegalArgumentException("the CUDA backend cannot attend over " + (cache instanceof PagedKvCache p ? "a paged cache over " + p.store().getClass().getSimpleName() : cache.getClass().getSimpleName()));
            }
            if (cacheKvDim != kvDim || layer >= cacheLayers || (numLayers >= 0 && cacheLayers != numLayers))
                throw new IllegalStateException("KV cache of " + cacheLayers + " layers x " + cacheKvDim + " used for layer " + layer + " x " + kvDim);
            if (type != null && cacheType != type)
                throw new IllegalArgumentException("one attention batch mixes " + type + " and " + cacheType + " KV caches; the CUDA kernels take one --kv-cache-type per batch");
            type = cacheType;
            numLayers = cacheLayers;
            oneSequence &= cache == first;
            stageLong(cacheBaseOffset(stagingTokens, t), base);
            stageLong(blockTableOffset(stagingTokens, t), table);
            stageInt(numBlocksOffset(stagingTokens, t), cacheBlocks);
            stageInt(positionOffset(stagingTokens, t), pos);
        }
        flushStagingIfEager();
        if (mode == Mode.REPLAY) return;
        if (rope != null) {
            int half = rope.ropeDim() / 2;
            kernels.args().ptr(a(q).pointer()).ptr(a(k).pointer()).ptr(a(v).pointer()).ptr(stagingDevice).i32(stagingTokens)
                    .i32(layer).i32(numLayers).i32(numHeads).i32(numKvHeads).i32(headDim).i32(rope.ropeDim()).ptr(ropeTable(rope))
                    .i32(rope.neox() ? 1 : 0)
                    .launch(kernels.ropeKvStore(type), "rope_kv_store", numTokens, 1, rowThreads(Math.max((numHeads + numKvHeads) * half, kvDim), 256));
        } else {
            kernels.args().ptr(a(k).pointer()).ptr(a(v).pointer()).ptr(stagingDevice).i32(stagingTokens).i32(layer)
                    .i32(numLayers).i32(kvDim)
                    .launch(kernels.kvStore(type), "kv_store", numTokens, 1, 128);
        }
        if (numTokens > 1 && oneSequence) {
            kernels.args().ptr(a(q).pointer()).ptr(a(out).pointer()).ptr(stagingDevice).i32(stagingTokens).i32(numTokens)
                    .i32(layer).i32(numLayers).i32(numHeads).i32(numKvHeads).i32(headDim)
                    .launch(kernels.attentionPrefill(type), "attention_prefill", numHeads, prefillBlocksY(numTokens), PREFILL_THREADS);
        } else {
            int splits = decodeSplits(numTokens, numHeads, headDim);
            kernels.args().ptr(a(q).pointer()).ptr(a(out).pointer()).ptr(stagingDevice).i32(stagingTokens)
                    .i32(layer).i32(numLayers).i32(numHeads).i32(numKvHeads).i32(headDim).ptr(decodePartial).ptr(decodeCounters)
                    .launch(kernels.attentionDecode(type), "attention_decode", numHeads, numTokens, splits, DECODE_THREADS);
        }
    }

    /**
     * The device address of a paged sequence's block table, copied there first if the sequence's table changed:
     * now when eager (in stream order, before the kernels that read it), else at endStep before the graph runs.
     */
    private long deviceTable(CudaKvBlockStore store, PagedKvCache cache) {
        CudaKvBlockStore.Table t = store.table(cache);
        if (t.stale) {
            int[] ids = Arrays.copyOf(cache.blocks(), cache.numBlocks());
            if (mode == Mode.EAGER) copyTable(t.pointer, ids);
            else pendingTables.add(new PendingTable(t.pointer, ids));
            store.markUploaded(t, cache.version());
        }
        return t.pointer;
    }

    private void copyTable(long pointer, int[] ids) {
        if (ids.length == 0) return;
        MemorySegment host = bounce(4L * ids.length);
        MemorySegment.copy(ids, 0, host, ValueLayout.JAVA_INT, 0, ids.length);
        device.copyToDevice(pointer, host, 4L * ids.length);  // pageable source: staged before this returns
    }

    private void flushTables() {
        for (PendingTable p : pendingTables) copyTable(p.pointer(), p.ids());
        pendingTables.clear();
    }

    /**
     * Split-K scratch for decode attention: partial softmax states of up to MAX_SPLIT_TOKENS tokens and one arrival
     * counter per (token, head), zero between launches. Allocated only outside steps (a captured step cannot
     * allocate and zero safely); a step that finds it too small runs unsplit.
     */
    private void ensureDecodeScratch(int numHeads, int headDim) {
        long partialBytes = 4L * MAX_SPLIT_TOKENS * numHeads * DECODE_SPLITS * (headDim + 2);
        long counterBytes = 4L * MAX_SPLIT_TOKENS * numHeads;
        if (partialBytes <= decodePartialBytes && counterBytes <= decodeCountersBytes) return;
        device.synchronize();
        free(decodePartial);
        free(decodeCounters);
        decodePartial = allocate(partialBytes);
        decodePartialBytes = partialBytes;
        decodeCounters = allocate(counterBytes);
        decodeCountersBytes = counterBytes;
        device.zero(decodeCounters, counterBytes);
        check(cuda_h.cuCtxSynchronize(), "cuCtxSynchronize");
    }

    private int decodeSplits(int numTokens, int numHeads, int headDim) {
        if (numTokens > MAX_SPLIT_TOKENS) return 1;
        long partialBytes = 4L * MAX_SPLIT_TOKENS * numHeads * DECODE_SPLITS * (headDim + 2);
        long counterBytes = 4L * MAX_SPLIT_TOKENS * numHeads;
        if (partialBytes > decodePartialBytes || counterBytes > decodeCountersBytes) return 1;
        // More tokens fill the device by themselves: on the H100, batch 16 decode went from 2,713 to 3,091 tok/s with
        // 2 splits instead of 16, while batch 1 needs the 16 (4 gave 605 tok/s against 661).
        return Math.max(Math.min(2, DECODE_SPLITS), DECODE_SPLITS / numTokens);
    }

    // ---- sampling on the device ----

    @Override
    public void argmax(Activations logits, int numRows, int[] out) {
        requireEager("argmax");
        enter();
        flushPending();
        long buf = sampleBuffer(8L * numRows);
        kernels.args().ptr(a(logits).pointer()).i32(logits.width()).ptr(buf)
                .launch(kernels.argmax, "argmax", numRows, 1, SAMPLE_THREADS);
        readInts(buf, out, numRows);
        // The kernel leaves INT_MAX where no value ranked (all -inf or NaN).
        for (int r = 0; r < numRows; r++) if (out[r] < 0 || out[r] >= logits.width()) out[r] = -1;
    }

    /**
     * Samples row r from its top {@code topK} logits (at most 256) at {@code temperature}, cut to the smallest prefix
     * holding {@code topP} of their probability, with the uniform number {@code uniforms[r]} in [0, 1).
     */
    public void sampleTopKTopP(Activations logits, int numRows, int topK, float topP, float temperature, float[] uniforms, int[] out) {
        requireEager("sampleTopKTopP");
        if (!(temperature > 0)) throw new IllegalArgumentException("temperature " + temperature + " must be positive; use argmax for greedy");
        enter();
        flushPending();
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
    public void beginStep(Object shapeKey, int numTokens) {
        if (mode != Mode.EAGER) throw new IllegalStateException("beginStep inside a step");
        flushPending();
        if (shapeKey == null || kernels.profiling()) return;  // profiling times each launch, so nothing is captured
        enter();
        growStaging(numTokens);  // staging cannot grow once recording (graphs hold its address)
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
        if (mode == Mode.EAGER) {
            flushPending();
            return;
        }
        enter();
        flushPending();
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
        flushTables();
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
        markStagingDirty();
        // Drop what the failed step deferred, but upload its block tables: the stores already count them as there.
        numPendingMatmuls = 0;
        pendingMatmulInput = null;
        Arrays.fill(pendingWeights, null);
        Arrays.fill(pendingOuts, null);
        pendingRopes.clear();
        flushTables();
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
        flushPending();
        return mode == Mode.REPLAY ? null : device.stream;
    }

    /** True between beginStep with a key and endStep: launches are being captured or replayed. */
    boolean recording() {
        return mode != Mode.EAGER;
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
        markStagingDirty();
    }

    private void stageInt(long offset, int value) {
        if (stagingHost.get(ValueLayout.JAVA_INT, offset) != value) {
            stagingHost.set(ValueLayout.JAVA_INT, offset, value);
            markStagingDirty(offset, 4);
        }
    }

    private void stageLong(long offset, long value) {
        if (stagingHost.get(ValueLayout.JAVA_LONG, offset) != value) {
            stagingHost.set(ValueLayout.JAVA_LONG, offset, value);
            markStagingDirty(offset, 8);
        }
    }

    private void markStagingDirty() {
        markStagingDirty(0, stagingHost.byteSize());
    }

    private void markStagingDirty(long offset, long bytes) {
        if (stagingDirtyFrom >= stagingDirtyTo) {
            stagingDirtyFrom = offset;
            stagingDirtyTo = offset + bytes;
        } else {
            stagingDirtyFrom = Math.min(stagingDirtyFrom, offset);
            stagingDirtyTo = Math.max(stagingDirtyTo, offset + bytes);
        }
    }

    /**
     * Copies the changed part of the staging buffer in stream order, before the kernels queued next; inside a step
     * endStep does it. A decode step changes a position and a token: a few KiB, not the whole buffer.
     */
    private void flushStagingIfEager() {
        if (mode != Mode.EAGER || stagingDirtyFrom >= stagingDirtyTo) return;
        long from = stagingDirtyFrom, bytes = stagingDirtyTo - stagingDirtyFrom;
        device.copyToDevice(stagingDevice + from, stagingHost.asSlice(from, bytes), bytes);
        stagingDirtyFrom = stagingDirtyTo = 0;
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
        for (CudaKvBlockStore store : stores) store.freeAll();
        stores.clear();
        if (cublas != null) cublas_api_h.cublasDestroy_v2(cublas);
        for (long p : allocations) device.free(p);
        allocations.clear();
        kernels.close();
        device.close();
        arena.close();
    }
}
