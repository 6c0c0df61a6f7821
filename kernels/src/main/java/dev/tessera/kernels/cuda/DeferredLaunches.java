package dev.tessera.kernels.cuda;

import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.RopeTable;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static dev.tessera.kernels.cuda.LaunchGeometry.*;

/**
 * Launches the CUDA backend holds back by one op so that neighbours fuse into one kernel: matmuls reading the same
 * input (Q, K, V; gate, up) run as one matvec launch; a matvec followed by {@code add} of its output into the
 * residual, or gate and up followed by {@code swiglu}, finish in the matvec's epilogue; rope of q and k followed by
 * attention run in the KV-store kernel. Results are the ones the separate kernels give. Any other op, endStep and
 * every host transfer call {@link #flushPending} first, so the order of effects is unchanged. Matmuls and ropes are
 * never pending together.
 */
final class DeferredLaunches {
    // Epilogues of the matvec kernel (MATVEC_STORE, MATVEC_RESIDUAL, MATVEC_SWIGLU in matvec.cuh).
    private static final int MATVEC_STORE = 0, MATVEC_RESIDUAL = 1, MATVEC_SWIGLU = 2;

    /** A rope whose positions are already staged; launched on its own, or fused into attention's KV store. */
    private record PendingRope(CudaActivations x, int numTokens, int numHeads, int headDim, RopeTable rope) {}

    private final CudaBackend backend;
    private final CudaKernels kernels;
    private final StepRecorder steps;

    // Up to three matmuls over one input, or up to two ropes.
    private final CudaWeight[] pendingWeights = new CudaWeight[3];
    private final CudaActivations[] pendingOuts = new CudaActivations[3];
    private int numPendingMatmuls, pendingMatmulTokens;
    private CudaActivations pendingMatmulInput;
    private final List<PendingRope> pendingRopes = new ArrayList<>(2);

    DeferredLaunches(CudaBackend backend, CudaKernels kernels, StepRecorder steps) {
        this.backend = backend;
        this.kernels = kernels;
        this.steps = steps;
    }

    /** A matmul of at most MAX_MATVEC_TOKENS tokens: joins the pending ones when it reads the same input. */
    void matmul(CudaWeight cw, CudaActivations in, int numTokens, CudaActivations o) {
        flushRopes();
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

    /** Defers a rope whose positions it stages now; a pending rope with other positions (or tokens) goes first. */
    void rope(CudaActivations xs, int numTokens, int numHeads, int headDim, int[] positions, RopeTable rope) {
        flushMatmuls();
        boolean joins = pendingRopes.size() == 1 && pendingRopes.getFirst().numTokens() == numTokens && pendingRopes.getFirst().x() != xs
                && steps.stagedPositionsEqual(positions, numTokens);
        if (!joins) flushRopes();
        steps.growStaging(numTokens);
        for (int t = 0; t < numTokens; t++) steps.stageInt(positionOffset(steps.stagingTokens, t), positions[t]);
        steps.flushStagingIfEager();
        pendingRopes.add(new PendingRope(xs, numTokens, numHeads, headDim, rope));
    }

    /** True when gate and up are the two pending matmuls: launched with the swiglu epilogue. Else flushes them. */
    boolean fuseSwiglu(CudaActivations gate, CudaActivations up, int numTokens) {
        flushRopes();
        if (numPendingMatmuls == 2 && pendingOuts[0] == gate && pendingOuts[1] == up && pendingMatmulTokens == numTokens
                && pendingWeights[0].rows() == pendingWeights[1].rows() && gate.width() == up.width()) {
            launchMatvec(MATVEC_SWIGLU, null);
            return true;
        }
        flushMatmuls();
        return false;
    }

    /** True when x is the one pending matmul's output: launched adding into acc. Else flushes it. */
    boolean fuseAdd(CudaActivations acc, CudaActivations x, int numTokens) {
        flushRopes();
        if (numPendingMatmuls == 1 && pendingOuts[0] == x && pendingMatmulTokens == numTokens && acc != pendingMatmulInput
                && acc != x && acc.width() == x.width()) {
            launchMatvec(MATVEC_RESIDUAL, acc);
            return true;
        }
        flushMatmuls();
        return false;
    }

    /**
     * When rope(q) and rope(k) are pending over these tokens at these (already staged) positions, takes them for
     * attention to rotate in its KV store and returns their table; otherwise launches them and returns null.
     */
    RopeTable takeRopesFor(CudaActivations q, CudaActivations k, AttentionBatch batch, int numHeads, int numKvHeads, int headDim) {
        int numTokens = batch.numTokens();
        PendingRope ropeQ = null, ropeK = null;
        for (PendingRope r : pendingRopes) {
            if (r.x() == q) ropeQ = r;
            else if (r.x() == k) ropeK = r;
        }
        boolean fuseRope = pendingRopes.size() == 2 && ropeQ != null && ropeK != null && ropeQ.numTokens() == numTokens
                && ropeK.numTokens() == numTokens && ropeQ.numHeads() == numHeads && ropeK.numHeads() == numKvHeads
                && ropeQ.headDim() == headDim && ropeK.headDim() == headDim && ropeQ.rope() == ropeK.rope()
                && steps.stagedPositionsEqual(batch.positions(), numTokens);
        RopeTable rope = fuseRope ? ropeQ.rope() : null;
        if (fuseRope) pendingRopes.clear();
        else flushRopes();
        return rope;
    }

    /** Launches whatever is deferred, in call order. */
    void flushPending() {
        flushMatmuls();
        flushRopes();
    }

    void flushMatmuls() {
        launchMatvec(MATVEC_STORE, null);
    }

    void flushRopes() {
        for (PendingRope r : pendingRopes) {
            if (steps.replaying()) continue;
            long invFreq = backend.ropeTable(r.rope());
            int half = r.rope().ropeDim() / 2;
            kernels.args().ptr(r.x().pointer()).ptr(steps.stagingDevice).i32(steps.stagingTokens).i32(r.x().width()).i32(r.numHeads()).i32(r.headDim())
                    .i32(r.rope().ropeDim()).ptr(invFreq).i32(r.rope().neox() ? 1 : 0)
                    .launch(kernels.rope, "rope", r.numTokens(), 1, rowThreads(r.numHeads() * half, 256));
        }
        pendingRopes.clear();
    }

    /** Drops what a failed step deferred. */
    void discard() {
        numPendingMatmuls = 0;
        pendingMatmulInput = null;
        Arrays.fill(pendingWeights, null);
        Arrays.fill(pendingOuts, null);
        pendingRopes.clear();
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
        if (steps.replaying()) {
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
}
