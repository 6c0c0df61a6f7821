package dev.tessera.kernels.cuda;

import dev.tessera.bindings.LibraryUnavailableException;
import dev.tessera.bindings.cuda.cuda_h;
import dev.tessera.bindings.nccl.nccl_h;
import dev.tessera.kernels.Activations;
import dev.tessera.kernels.collective.Collective;
import dev.tessera.kernels.collective.CollectiveException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A {@link Collective} over NCCL: one rank per CUDA device, its calls enqueued on the rank's {@link CudaBackend}
 * stream after the backend's deferred launches, so they sit in step order among the other ops.
 *
 * <p>Setup: rank 0 makes an id with {@link #uniqueId()}; the caller hands its 128 bytes to every rank (over the TCP
 * link the group already has), and each rank opens {@code new NcclCollective(backend, rank, size, id)}, which blocks
 * in {@code ncclCommInitRank} until all ranks have joined.
 *
 * <p>{@link #allReduce} is an F32 sum in place ({@code ncclAllReduce}), asynchronous on the stream and allowed inside
 * a recorded step (NCCL kernels can be captured into CUDA graphs; a replay runs them again). {@link #allToAll} first
 * exchanges row counts with an {@code ncclAllGather} of every rank's {@code sendCounts} ([size][size] int32, read back
 * to the host: this synchronizes the stream), then moves the rows in one {@code ncclGroupStart}/{@code ncclGroupEnd}
 * of {@code ncclSend}/{@code ncclRecv} pairs, rows for this rank itself by a device copy. Because its counts come
 * back to the host, allToAll refuses to run inside a recorded step.
 *
 * <p>Without libnccl, opening fails with one line naming the missing library. Any NCCL error breaks the group: the
 * communicator is aborted and later calls throw. UNVERIFIED on a GPU (none here): written to the NCCL API reference.
 */
public final class NcclCollective implements Collective {
    private final CudaBackend backend;
    private final int rank, size;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment comm;
    /** Device buffers for the count exchange: this rank's sendCounts [size], everyone's [size][size]. */
    private final long countsSend, countsAll;
    private final MemorySegment countsHost;
    private String broken;
    private boolean closed;

    /** Empty when libnccl loads here, else one line naming what is missing. */
    public static String libraryProblem() {
        return nccl_h.libraryAvailable() ? "" : nccl_h.libraryStatus();
    }

    /** A fresh NCCL unique id (128 bytes) for rank 0 to hand to every rank. */
    public static byte[] uniqueId() {
        requireLibrary();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment id = a.allocate(nccl_h.ncclUniqueId);
            check(nccl_h.ncclGetUniqueId(id), "ncclGetUniqueId", -1, 0);
            return id.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    /**
     * Joins the group {@code idBytes} names as {@code rank} of {@code size}, on {@code backend}'s device; blocks
     * until every rank has joined. The library is looked for first, so a host without NCCL fails here in one line.
     */
    public NcclCollective(CudaBackend backend, int rank, int size, byte[] idBytes) {
        requireLibrary();
        if (size < 1 || rank < 0 || rank >= size) throw new IllegalArgumentException("rank " + rank + " of a group of " + size);
        if (idBytes == null || idBytes.length != nccl_h.NCCL_UNIQUE_ID_BYTES)
            throw new IllegalArgumentException("an NCCL unique id is " + nccl_h.NCCL_UNIQUE_ID_BYTES + " bytes, got " + (idBytes == null ? "none" : idBytes.length));
        this.backend = backend;
        this.rank = rank;
        this.size = size;
        CudaDevice device = backend.device();  // makes the backend's context current on this thread
        MemorySegment id = arena.allocate(nccl_h.ncclUniqueId);
        id.copyFrom(MemorySegment.ofArray(idBytes));
        MemorySegment commOut = arena.allocate(nccl_h.ncclComm_t);
        try {
            check(nccl_h.ncclCommInitRank(commOut, size, id, rank), "ncclCommInitRank", rank, size);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
        comm = commOut.get(nccl_h.ncclComm_t, 0);
        countsSend = device.allocate(4L * size);
        countsAll = device.allocate(4L * size * size);
        countsHost = arena.allocate(4L * size * size, 16);
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public String name() {
        return "nccl";
    }

    @Override
    public boolean recordable() {
        return true;
    }

    @Override
    public void allReduce(Activations x, int numTokens) {
        requireUsable();
        CudaActivations a = (CudaActivations) x;
        if (numTokens < 0 || numTokens > a.maxTokens()) throw new IllegalArgumentException(numTokens + " rows of a buffer of " + a.maxTokens());
        MemorySegment stream = backend.collectiveStream();
        if (stream == null || numTokens == 0) return;  // replaying: the recorded graph holds the launch
        MemorySegment data = MemorySegment.ofAddress(a.pointer());
        call(nccl_h.ncclAllReduce(data, data, (long) numTokens * a.width(), nccl_h.ncclFloat32, nccl_h.ncclSum, comm, stream), "ncclAllReduce");
    }

    @Override
    public int allToAll(Activations send, int[] sendCounts, Activations recv, int[] recvCounts) {
        requireUsable();
        CudaActivations s = (CudaActivations) send, r = (CudaActivations) recv;
        if (s.width() != r.width()) throw new IllegalArgumentException("allToAll from rows of " + s.width() + " into rows of " + r.width());
        if (sendCounts.length != size || recvCounts.length != size)
            throw new IllegalArgumentException("allToAll counts for " + sendCounts.length + " and " + recvCounts.length + " ranks in a group of " + size);
        int numSend = 0;
        for (int c : sendCounts) {
            if (c < 0) throw new IllegalArgumentException("negative send count " + c);
            numSend += c;
        }
        if (numSend > s.maxTokens()) throw new IllegalArgumentException(numSend + " rows to send from a buffer of " + s.maxTokens());
        if (backend.recording()) throw new IllegalStateException("allToAll inside a recorded step: its counts are read on the host; call it between steps");
        MemorySegment stream = backend.collectiveStream();
        CudaDevice device = backend.device();

        // 1. Counts: allGather of every rank's sendCounts; recvCounts[src] = all[src][rank].
        MemorySegment.copy(sendCounts, 0, countsHost, ValueLayout.JAVA_INT, 0, size);
        device.copyToDevice(countsSend, countsHost, 4L * size);
        call(nccl_h.ncclAllGather(MemorySegment.ofAddress(countsSend), MemorySegment.ofAddress(countsAll), size, nccl_h.ncclInt32, comm, stream), "ncclAllGather(counts)");
        device.copyToHost(countsHost, countsAll, 4L * size * size);
        device.synchronize();
        int numRecv = 0;
        for (int src = 0; src < size; src++) {
            recvCounts[src] = countsHost.getAtIndex(ValueLayout.JAVA_INT, (long) src * size + rank);
            numRecv += recvCounts[src];
        }
        if (recvCounts[rank] != sendCounts[rank]) fail("allToAll: rank " + rank + " sent itself " + sendCounts[rank] + " rows, the gathered counts say " + recvCounts[rank]);
        if (numRecv > r.maxTokens()) fail("allToAll: " + numRecv + " rows arrive at rank " + rank + ", its buffer holds " + r.maxTokens());

        // 2. Rows: one group of sends and receives, grouped by peer in rank order on both sides.
        long rowBytes = 4L * s.width();
        call(nccl_h.ncclGroupStart(), "ncclGroupStart");
        long sendAt = 0, recvAt = 0;
        long selfFrom = 0, selfTo = 0;
        for (int peer = 0; peer < size; peer++) {
            if (peer == rank) {
                selfFrom = sendAt;
                selfTo = recvAt;
            } else {
                if (sendCounts[peer] > 0)
                    call(nccl_h.ncclSend(MemorySegment.ofAddress(s.pointer() + sendAt * rowBytes), (long) sendCounts[peer] * s.width(), nccl_h.ncclFloat32, peer, comm, stream), "ncclSend to " + peer);
                if (recvCounts[peer] > 0)
                    call(nccl_h.ncclRecv(MemorySegment.ofAddress(r.pointer() + recvAt * rowBytes), (long) recvCounts[peer] * r.width(), nccl_h.ncclFloat32, peer, comm, stream), "ncclRecv from " + peer);
            }
            sendAt += sendCounts[peer];
            recvAt += recvCounts[peer];
        }
        call(nccl_h.ncclGroupEnd(), "ncclGroupEnd");
        if (sendCounts[rank] > 0) {
            int rc = cuda_h.cuMemcpyDtoDAsync_v2(r.pointer() + selfTo * rowBytes, s.pointer() + selfFrom * rowBytes, sendCounts[rank] * rowBytes, stream);
            if (rc != cuda_h.CUDA_SUCCESS) fail("allToAll: cuMemcpyDtoDAsync of rank " + rank + "'s own rows failed with CUresult " + rc);
        }
        return numRecv;
    }

    /**
     * Breaks the group and closes with {@code ncclCommAbort}: for a group given up on (a peer gone, set-up abandoned),
     * where {@code ncclCommDestroy} could wait for work that never completes.
     */
    public synchronized void abort(String why) {
        if (broken == null) broken = why;
        close();
    }

    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        CudaDevice device = backend.device();
        if (broken == null) {
            device.synchronize();  // nothing queued may still use the communicator
            nccl_h.ncclCommDestroy(comm);
        } else {
            nccl_h.ncclCommAbort(comm);
        }
        device.free(countsSend);
        device.free(countsAll);
        arena.close();
    }

    private static void requireLibrary() {
        if (!nccl_h.libraryAvailable()) throw new CollectiveException(nccl_h.libraryStatus(), new LibraryUnavailableException(nccl_h.libraryStatus()));
    }

    private void requireUsable() {
        if (closed) throw new CollectiveException("NCCL rank " + rank + " of " + size + " is closed");
        if (broken != null) throw new CollectiveException("NCCL group broken by an earlier failure: " + broken);
    }

    private void call(int rc, String what) {
        if (rc == nccl_h.ncclSuccess) return;
        try {
            check(rc, what, rank, size);
        } catch (CollectiveException e) {
            broken = e.getMessage();
            throw e;
        }
    }

    private void fail(String message) {
        broken = message;
        throw new CollectiveException(message);
    }

    private static void check(int rc, String what, int rank, int size) {
        if (rc == nccl_h.ncclSuccess) return;
        String reason;
        try {
            reason = nccl_h.ncclGetErrorString(rc).reinterpret(256).getString(0);
        } catch (RuntimeException e) {
            reason = "ncclResult_t " + rc;
        }
        String where = rank < 0 ? "" : " on rank " + rank + " of " + size;
        throw new CollectiveException(what + " failed" + where + ": " + reason + " (" + rc + ")");
    }
}
