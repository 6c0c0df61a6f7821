package dev.tessera.kernels.cuda;

import dev.tessera.bindings.cuda.cuda_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;

import static dev.tessera.kernels.cuda.CudaException.check;
import static dev.tessera.kernels.cuda.LaunchGeometry.STAGING_BYTES_PER_TOKEN;
import static dev.tessera.kernels.cuda.LaunchGeometry.positionOffset;

/**
 * The CUDA backend's step recording and its staging buffer. Per-step host data (token ids, positions, which cache
 * each token uses) is written into a host staging buffer by the ops and copied to a fixed device buffer, where kernels
 * read it; so a step's launches never embed that data and the step can be replayed. Between {@link #begin} with a key
 * and {@link #end}, the first step with a key is captured into a CUDA graph; later ones with an equal key only write
 * the staging buffer, and end copies its changed bytes and replays the graph.
 *
 * <p>Paged sequences' block tables changed inside a step are queued here and copied at end, before the graph runs,
 * since a host copy may not be captured.
 */
final class StepRecorder {
    private static final int MAX_GRAPHS = 64;  // decode steps of 1..16 tokens, with and without the classifier, per cache kind

    enum Mode { EAGER, CAPTURE, REPLAY }

    private record PendingTable(long pointer, int[] ids) {}

    private final CudaBackend backend;
    private final CudaDevice device;
    private final Arena arena;
    private final LinkedHashMap<Object, MemorySegment> graphs = new LinkedHashMap<>(16, 0.75f, true);
    private final MemorySegment out;
    /** Block tables to copy at endStep: device address and the ids as of the step. */
    private final List<PendingTable> pendingTables = new ArrayList<>();

    private Mode mode = Mode.EAGER;
    private Object stepKey;
    /** Token capacity of the staging buffer, its host copy and its device address. */
    int stagingTokens;
    private MemorySegment stagingHost;
    long stagingDevice;
    /** Bytes [stagingDirtyFrom, stagingDirtyTo) of the staging buffer changed since the last copy to the device. */
    private long stagingDirtyFrom, stagingDirtyTo;

    StepRecorder(CudaBackend backend, CudaDevice device, Arena arena, int initialStagingTokens) {
        this.backend = backend;
        this.device = device;
        this.arena = arena;
        this.out = arena.allocate(ValueLayout.JAVA_LONG);
        growStaging(initialStagingTokens);
    }

    boolean eager() {
        return mode == Mode.EAGER;
    }

    boolean replaying() {
        return mode == Mode.REPLAY;
    }

    // ---- steps and graphs ----

    /** Starts a recorded (or replayed) step; the backend has already launched what it deferred. */
    void begin(Object shapeKey, int numTokens) {
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

    /** Ends a recorded step: instantiates the capture (or finds the graph), copies staged data and tables, launches. */
    void end() {
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

    /** Discards a half-made capture; the whole staging buffer is copied again before the next launch. */
    void abort() {
        if (mode == Mode.CAPTURE) {
            if (cuda_h.cuStreamEndCapture(device.stream, out) == cuda_h.CUDA_SUCCESS) {
                MemorySegment graph = out.get(ValueLayout.ADDRESS, 0);
                if (!graph.equals(MemorySegment.NULL)) cuda_h.cuGraphDestroy(graph);
            }
        }
        mode = Mode.EAGER;
        stepKey = null;
        markStagingDirty();
    }

    int numGraphs() {
        return graphs.size();
    }

    void destroyGraphs() {
        for (MemorySegment exec : graphs.values()) cuda_h.cuGraphExecDestroy(exec);
        graphs.clear();
    }

    // ---- block tables ----

    /** Copies a sequence's block table now when eager (in stream order), else at end before the graph runs. */
    void copyTable(long pointer, int[] ids) {
        if (mode == Mode.EAGER) copyTableNow(pointer, ids);
        else pendingTables.add(new PendingTable(pointer, ids));
    }

    private void copyTableNow(long pointer, int[] ids) {
        if (ids.length == 0) return;
        MemorySegment host = backend.bounce(4L * ids.length);
        MemorySegment.copy(ids, 0, host, ValueLayout.JAVA_INT, 0, ids.length);
        device.copyToDevice(pointer, host, 4L * ids.length);  // pageable source: staged before this returns
    }

    /** Copies the queued tables; also after a failed step, since the stores already count them as uploaded. */
    void flushTables() {
        for (PendingTable p : pendingTables) copyTableNow(p.pointer(), p.ids());
        pendingTables.clear();
    }

    // ---- staging ----

    void growStaging(int numTokens) {
        if (numTokens <= stagingTokens) return;
        int n = Math.max(numTokens, 2 * stagingTokens);
        if (mode != Mode.EAGER) throw new IllegalStateException("staging buffer grows from " + stagingTokens + " to " + n + " tokens inside a step");
        // Graphs hold the old device address: drop them.
        destroyGraphs();
        device.synchronize();
        backend.free(stagingDevice);
        stagingTokens = n;
        stagingHost = arena.allocate((long) STAGING_BYTES_PER_TOKEN * n, 8);
        stagingDevice = backend.allocate((long) STAGING_BYTES_PER_TOKEN * n);
        markStagingDirty();
    }

    void stageInt(long offset, int value) {
        if (stagingHost.get(ValueLayout.JAVA_INT, offset) != value) {
            stagingHost.set(ValueLayout.JAVA_INT, offset, value);
            markStagingDirty(offset, 4);
        }
    }

    void stageLong(long offset, long value) {
        if (stagingHost.get(ValueLayout.JAVA_LONG, offset) != value) {
            stagingHost.set(ValueLayout.JAVA_LONG, offset, value);
            markStagingDirty(offset, 8);
        }
    }

    /** True when the staging buffer holds exactly these positions for tokens [0, n): what a pending rope will read. */
    boolean stagedPositionsEqual(int[] positions, int n) {
        if (n > stagingTokens) return false;
        for (int t = 0; t < n; t++) if (stagingHost.get(ValueLayout.JAVA_INT, positionOffset(stagingTokens, t)) != positions[t]) return false;
        return true;
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
     * end does it. A decode step changes a position and a token: a few KiB, not the whole buffer.
     */
    void flushStagingIfEager() {
        if (mode != Mode.EAGER || stagingDirtyFrom >= stagingDirtyTo) return;
        long from = stagingDirtyFrom, bytes = stagingDirtyTo - stagingDirtyFrom;
        device.copyToDevice(stagingDevice + from, stagingHost.asSlice(from, bytes), bytes);
        stagingDirtyFrom = stagingDirtyTo = 0;
    }
}
