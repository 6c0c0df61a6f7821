package dev.tessera.kernels.cuda;

import dev.tessera.bindings.cuda.cuda_h;
import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.PagedKvCache;
import dev.tessera.kernels.RopeTable;

import java.util.Arrays;

import static dev.tessera.kernels.cuda.CudaException.check;
import static dev.tessera.kernels.cuda.LaunchGeometry.*;

/**
 * The CUDA backend's attention: stores each token's k and v in its sequence's cache (rotating q and k there when the
 * two ropes just before were deferred for it), then runs the tiled prefill kernel for a batch of one sequence, or the
 * split-K decode kernel for anything else. Caches come in two kinds that a batch may mix: private {@link CudaKvCache}s
 * and {@link PagedKvCache}s over this backend's {@link CudaKvBlockStore}s (one element type per batch); each paged
 * sequence's block table lives on the device and is re-uploaded when its version changes.
 */
final class AttentionLaunch {
    /** Blocks per (token, head) of split-K decode attention; {@code -Dtessera.cuda.decodeSplits} for tuning runs. */
    static final int DECODE_SPLITS = LaunchGeometry.tuning("tessera.cuda.decodeSplits", 16, 1, 16);
    static final int MAX_SPLIT_TOKENS = 16;

    private final CudaBackend backend;
    private final CudaDevice device;
    private final CudaKernels kernels;
    private final StepRecorder steps;
    private final DeferredLaunches deferred;
    private long decodePartial, decodePartialBytes, decodeCounters, decodeCountersBytes;

    AttentionLaunch(CudaBackend backend, CudaDevice device, CudaKernels kernels, StepRecorder steps, DeferredLaunches deferred) {
        this.backend = backend;
        this.device = device;
        this.kernels = kernels;
        this.steps = steps;
        this.deferred = deferred;
    }

    /** Validates, stages the batch's caches and positions, and launches the KV store and attention kernels. */
    void launch(int layer, Activations q, Activations k, Activations v, AttentionBatch batch,
                int numHeads, int numKvHeads, int headDim, Activations out) {
        int numTokens = batch.numTokens();
        int kvDim = numKvHeads * headDim;
        if (headDim > MAX_HEAD_DIM || numHeads % numKvHeads != 0)
            throw new IllegalArgumentException("attention with " + numHeads + " heads, " + numKvHeads + " KV heads of " + headDim + ": CUDA kernels need headDim <= " + MAX_HEAD_DIM + " and whole groups");
        requireWidth(k, kvDim, "attention keys");
        requireWidth(v, kvDim, "attention values");
        requireWidth(q, numHeads * headDim, "attention queries");
        requireWidth(out, numHeads * headDim, "attention output");
        deferred.flushMatmuls();
        if (steps.eager()) {
            for (CudaKvBlockStore s : backend.stores) s.reclaim();
            ensureDecodeScratch(numHeads, headDim);
        }
        // rope(q), rope(k) just before, over these tokens at these (already staged) positions: rotate in the KV store.
        RopeTable rope = deferred.takeRopesFor(a(q), a(k), batch, numHeads, numKvHeads, headDim);
        steps.growStaging(numTokens);
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
            } else if (cache instanceof PagedKvCache p && p.store() instanceof CudaKvBlockStore s && backend.stores.contains(s)) {
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
            steps.stageLong(cacheBaseOffset(steps.stagingTokens, t), base);
            steps.stageLong(blockTableOffset(steps.stagingTokens, t), table);
            steps.stageInt(numBlocksOffset(steps.stagingTokens, t), cacheBlocks);
            steps.stageInt(positionOffset(steps.stagingTokens, t), pos);
        }
        steps.flushStagingIfEager();
        if (steps.replaying()) return;
        if (rope != null) {
            int half = rope.ropeDim() / 2;
            kernels.args().ptr(a(q).pointer()).ptr(a(k).pointer()).ptr(a(v).pointer()).ptr(steps.stagingDevice).i32(steps.stagingTokens)
                    .i32(layer).i32(numLayers).i32(numHeads).i32(numKvHeads).i32(headDim).i32(rope.ropeDim()).ptr(backend.ropeTable(rope))
                    .i32(rope.neox() ? 1 : 0)
                    .launch(kernels.ropeKvStore(type), "rope_kv_store", numTokens, 1, rowThreads(Math.max((numHeads + numKvHeads) * half, kvDim), 256));
        } else {
            kernels.args().ptr(a(k).pointer()).ptr(a(v).pointer()).ptr(steps.stagingDevice).i32(steps.stagingTokens).i32(layer)
                    .i32(numLayers).i32(kvDim)
                    .launch(kernels.kvStore(type), "kv_store", numTokens, 1, 128);
        }
        if (numTokens > 1 && oneSequence) {
            kernels.args().ptr(a(q).pointer()).ptr(a(out).pointer()).ptr(steps.stagingDevice).i32(steps.stagingTokens).i32(numTokens)
                    .i32(layer).i32(numLayers).i32(numHeads).i32(numKvHeads).i32(headDim)
                    .launch(kernels.attentionPrefill(type), "attention_prefill", numHeads, prefillBlocksY(numTokens), PREFILL_THREADS);
        } else {
            int splits = decodeSplits(numTokens, numHeads, headDim);
            kernels.args().ptr(a(q).pointer()).ptr(a(out).pointer()).ptr(steps.stagingDevice).i32(steps.stagingTokens)
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
            steps.copyTable(t.pointer, Arrays.copyOf(cache.blocks(), cache.numBlocks()));
            store.markUploaded(t, cache.version());
        }
        return t.pointer;
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
        backend.free(decodePartial);
        backend.free(decodeCounters);
        decodePartial = backend.allocate(partialBytes);
        decodePartialBytes = partialBytes;
        decodeCounters = backend.allocate(counterBytes);
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

    private static void requireWidth(Activations x, int width, String what) {
        if (x.width() != width) throw new IllegalStateException(what + ": width " + x.width() + ", expected " + width);
    }

    private static CudaActivations a(Activations x) {
        return (CudaActivations) x;
    }
}
