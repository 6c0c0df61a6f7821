package dev.tessera.kernels.cuda;

import dev.tessera.kernels.ExpertRouting;
import dev.tessera.kernels.Weight;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.tessera.kernels.cuda.LaunchGeometry.*;

/**
 * The CUDA backend's mixture-of-experts ops. The grouped expert matmul follows ggml's {@code mul_mat_id} as
 * {@code CpuExperts} does: the step's grouping (routing stays on the host) is uploaded once per call; one
 * {@code copy_rows} launch gathers every slot's input row into a batch ordered by expert; each expert with tokens runs
 * the backend's own matmul over its stretch of that batch (the dequantizing matvec up to 16 tokens, cuBLAS past that),
 * so every format the dense path reads works and each expert's weights are read once per call; one more
 * {@code copy_rows} scatters the results to their slots. Gate and up of one expert read the same stretch, so
 * {@link DeferredLaunches} runs the pair as one matvec.
 *
 * <p>Eager only: the grouping and the combine weights are written from the host each step, so a step holding these
 * ops cannot be replayed (MoeFeedForward is not recordable). UNVERIFIED: not yet run on a GPU in this repo's CI.
 */
final class CudaExperts {
    private static final int ROW_THREADS = 256;

    private final CudaBackend backend;
    private final CudaDevice device;
    private final CudaKernels kernels;
    private final DeferredLaunches deferred;

    /** Ints [2][numSlots]: each grouped row's input row, then the slot its result goes to. */
    private final Scratch grouping = new Scratch();
    /** Floats [numTokens][k]: the routing weights, for the combine. */
    private final Scratch weights = new Scratch();
    /** Floats [numSlots][width]: the gathered inputs, grouped by expert, and one or two batches of results. */
    private final Scratch gathered = new Scratch(), resultsA = new Scratch(), resultsB = new Scratch();

    CudaExperts(CudaBackend backend, CudaDevice device, CudaKernels kernels, DeferredLaunches deferred) {
        this.backend = backend;
        this.device = device;
        this.kernels = kernels;
        this.deferred = deferred;
    }

    /** out[slot] = experts[id(slot)] · x[row of slot]; see Backend.matmulExperts. */
    void matmul(Weight[] experts, CudaActivations x, boolean xPerSlot, ExpertRouting routing, CudaActivations out) {
        requireEager("matmulExperts");
        int numSlots = routing.numTokens() * routing.numUsed();
        requireRows(x, xPerSlot ? numSlots : routing.numTokens(), "expert input");
        requireRows(out, numSlots, "expert output");
        deferred.flushPending();  // x may be a pending matvec's output
        if (numSlots == 0) return;
        long rows = uploadGrouping(routing, xPerSlot, numSlots);
        long in = gather(x, rows, numSlots);
        long results = resultsA.ensure(4L * numSlots * out.width());
        int offset = 0;
        for (int e = 0; e < routing.numExperts(); e++) {
            int count = routing.count(e);
            if (count == 0) continue;
            Weight w = expert(experts, e, count);
            backend.matmul(w, view(in, offset, count, x.width()), count, view(results, offset, count, out.width()));
            offset += count;
        }
        deferred.flushPending();
        scatter(results, out, rows + 4L * numSlots, numSlots);
    }

    /** matmul of gate and of up over the tokens' own rows, from one gather; an expert's pair is one matvec launch. */
    void matmulGateUp(Weight[] gate, Weight[] up, CudaActivations x, ExpertRouting routing, CudaActivations gateOut, CudaActivations upOut) {
        requireEager("matmulExpertsGateUp");
        if (gateOut.width() != upOut.width()) throw new IllegalStateException("gate rows of width " + gateOut.width() + ", up rows of " + upOut.width());
        int numSlots = routing.numTokens() * routing.numUsed(), width = gateOut.width();
        requireRows(x, routing.numTokens(), "expert input");
        requireRows(gateOut, numSlots, "expert gate output");
        requireRows(upOut, numSlots, "expert up output");
        deferred.flushPending();
        if (numSlots == 0) return;
        long rows = uploadGrouping(routing, false, numSlots);
        long in = gather(x, rows, numSlots);
        long gateResults = resultsA.ensure(4L * numSlots * width), upResults = resultsB.ensure(4L * numSlots * width);
        int offset = 0;
        for (int e = 0; e < routing.numExperts(); e++) {
            int count = routing.count(e);
            if (count == 0) continue;
            Weight g = expert(gate, e, count), u = expert(up, e, count);
            CudaActivations input = view(in, offset, count, x.width());  // one object for both: DeferredLaunches fuses by identity
            backend.matmul(g, input, count, view(gateResults, offset, count, width));
            backend.matmul(u, input, count, view(upResults, offset, count, width));
            offset += count;
        }
        deferred.flushPending();
        long slots = rows + 4L * numSlots;
        scatter(gateResults, gateOut, slots, numSlots);
        scatter(upResults, upOut, slots, numSlots);
    }

    /** acc[t] += Σ_s weight(t, s) · slots[t * k + s]. */
    void combine(CudaActivations slots, ExpertRouting routing, CudaActivations acc) {
        requireEager("combineExperts");
        if (slots.width() != acc.width()) throw new IllegalStateException("expert outputs of width " + slots.width() + " into " + acc.width());
        int numTokens = routing.numTokens(), k = routing.numUsed();
        requireRows(slots, numTokens * k, "expert outputs");
        requireRows(acc, numTokens, "combine target");
        deferred.flushPending();
        if (numTokens == 0) return;
        MemorySegment host = backend.bounce(4L * numTokens * k);
        for (int t = 0; t < numTokens; t++)
            for (int s = 0; s < k; s++) host.setAtIndex(ValueLayout.JAVA_FLOAT, (long) t * k + s, routing.weight(t, s));
        long w = weights.ensure(4L * numTokens * k);
        device.copyToDevice(w, host, 4L * numTokens * k);  // stream order: the previous call's combine has read it
        kernels.args().ptr(acc.pointer()).ptr(slots.pointer()).ptr(w).i32(k).i32(acc.width())
                .launch(kernels.combineExperts, "combine_experts", numTokens, 1, rowThreads(acc.width(), ROW_THREADS));
    }

    /** acc[t] += sigmoid(gate[t][0]) · x[t]. */
    void addSigmoidGated(CudaActivations acc, CudaActivations x, CudaActivations gate, int numTokens) {
        requireEager("addSigmoidGated");
        if (x.width() != acc.width()) throw new IllegalStateException("sigmoid-gated add of width " + x.width() + " into " + acc.width());
        deferred.flushPending();
        long n = (long) numTokens * acc.width();
        kernels.args().ptr(acc.pointer()).ptr(x.pointer()).ptr(gate.pointer()).i32(gate.width()).i32(acc.width()).i64(n)
                .launch(kernels.addSigmoidGated, "add_sigmoid_gated", elementwiseBlocks(n), 1, ELEMENTWISE_THREADS);
    }

    /**
     * Uploads the grouping: for the j-th slot in expert order, the row of x it reads and the slot it fills. Returns
     * the device address of the rows; the slots follow them.
     */
    private long uploadGrouping(ExpertRouting routing, boolean xPerSlot, int numSlots) {
        int k = routing.numUsed();
        MemorySegment host = backend.bounce(8L * numSlots);
        int j = 0;
        for (int e = 0; e < routing.numExperts(); e++)
            for (int i = 0; i < routing.count(e); i++, j++) {
                int slot = routing.slot(e, i);
                host.setAtIndex(ValueLayout.JAVA_INT, j, xPerSlot ? slot : slot / k);
                host.setAtIndex(ValueLayout.JAVA_INT, numSlots + j, slot);
            }
        long p = grouping.ensure(8L * numSlots);
        device.copyToDevice(p, host, 8L * numSlots);  // stream order: the previous call's kernels have read the old one
        return p;
    }

    /** gathered[j] = x[rows[j]]: the inputs in expert order. */
    private long gather(CudaActivations x, long rows, int numSlots) {
        long p = gathered.ensure(4L * numSlots * x.width());
        kernels.args().ptr(p).ptr(0).ptr(x.pointer()).ptr(rows).i32(x.width())
                .launch(kernels.copyRows, "copy_rows gather", numSlots, 1, rowThreads(x.width(), ROW_THREADS));
        return p;
    }

    /** out[slots[j]] = results[j]. */
    private void scatter(long results, CudaActivations out, long slots, int numSlots) {
        kernels.args().ptr(out.pointer()).ptr(slots).ptr(results).ptr(0).i32(out.width())
                .launch(kernels.copyRows, "copy_rows scatter", numSlots, 1, rowThreads(out.width(), ROW_THREADS));
    }

    /** Rows [offset, offset + count) of a [*][width] batch at p. */
    private static CudaActivations view(long p, int offset, int count, int width) {
        return new CudaActivations(count, width, p + 4L * offset * width);
    }

    private static Weight expert(Weight[] experts, int e, int count) {
        if (experts[e] == null) throw new IllegalStateException("expert " + e + " has " + count + " slots routed to it but no weights here");
        return experts[e];
    }

    private static void requireRows(CudaActivations a, int rows, String what) {
        if (rows > a.maxTokens()) throw new IllegalStateException(what + ": " + rows + " rows into a buffer of " + a.maxTokens());
    }

    private void requireEager(String what) {
        if (backend.recording()) throw new IllegalStateException(what + " inside a recorded step: expert routing runs on the host, so an MoE step is never recorded");
    }

    /** A device buffer that only grows; the old one is freed once the queued kernels are done with it. */
    private final class Scratch {
        private long pointer, sizeBytes;

        long ensure(long bytes) {
            if (bytes > sizeBytes) {
                device.synchronize();
                backend.free(pointer);
                sizeBytes = Math.max(bytes, 2 * sizeBytes);
                pointer = backend.allocate(sizeBytes);
            }
            return pointer;
        }
    }
}
