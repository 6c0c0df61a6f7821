package dev.tessera.offload;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.PagedSequences;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.Socket;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.util.Arrays;

import static dev.tessera.offload.OffloadProtocol.*;

/**
 * One compute node's session on a memory node: HELLO and ALLOCATE set up a KV store for the node's KV heads, then each
 * STEP updates the block tables and lays out the step's rows, and each ATTEND stores a micro-batch's k and v and
 * answers its attention rows. Any error is sent back as one line and ends the session (and its KV memory).
 */
final class AttentionSession {
    /** The most floats of q, k, v and output rows a session may ask the node to hold (1 GiB): a bound on a hello's sizes. */
    static final long MAX_ACTIVATION_FLOATS = 1L << 28;

    private final AttentionWorker worker;
    private final Socket socket;
    private Hello hello;
    private PagedSequences sequences;
    private int[] positions = new int[0];
    private KvCache[] rows = new KvCache[0];
    private int numRows;
    private float[] q, k, v, out;
    private Activations dq, dk, dv, dout;
    private long steps, attends, attentionNanos;

    AttentionSession(AttentionWorker worker, Socket socket) {
        this.worker = worker;
        this.socket = socket;
    }

    SocketAddress peer() {
        return socket.getRemoteSocketAddress();
    }

    void run() {
        String ended = "compute node closed the connection";
        try (socket) {
            DataInputStream in = new DataInputStream(new BufferedInputStream(socket.getInputStream(), 1 << 16));
            DataOutputStream out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream(), 1 << 16));
            try {
                setUp(in, out);
                while (true) {
                    Frame f;
                    try {
                        f = read(in);
                    } catch (EOFException e) {
                        break;
                    }
                    switch (f.type()) {
                        case STEP -> step(AttentionStep.decode(f.payload(), hello.maxBatchTokens(), sequences.store().numBlocks()));
                        case ATTEND -> attend(f.payload(), out);
                        case RESET -> { end(f.payload(), Type.RESET); sequences.clear(); numRows = 0; }
                        default -> throw new ProtocolException("unexpected " + f.type() + " frame");
                    }
                }
            } catch (IOException | RuntimeException e) {
                ended = e.getMessage() == null ? e.toString() : e.getMessage();
                if (!socket.isClosed() && !(e instanceof java.net.SocketException)) {
                    try {
                        write(out, Type.ERROR, error(ended));
                    } catch (IOException ignored) {
                        // the compute node is gone too
                    }
                }
            }
        } catch (IOException ignored) {
            // closing
        } finally {
            if (sequences != null) sequences.close();
            worker.log().printf("attention-worker: session with %s ended (%s): %d steps, %d attention calls, %.1f ms in attention%n",
                    peer(), ended, steps, attends, attentionNanos / 1e6);
        }
    }

    private void setUp(DataInputStream in, DataOutputStream out) throws IOException {
        Hello h = Hello.decode(read(in).expect(Type.HELLO).payload());
        long rowFloats = 2L * (h.numOwnedHeads() + h.numOwnedKvHeads()) * h.headDim();
        if (h.maxBatchTokens() * rowFloats > MAX_ACTIVATION_FLOATS)
            throw new ProtocolException("a batch of " + h.maxBatchTokens() + " rows of " + rowFloats + " floats exceeds this memory node's limit of "
                    + MAX_ACTIVATION_FLOATS + " activation floats");
        Backend backend = worker.backend();
        ByteBuffer ok = payload(8 + stringBytes(backend.name()));
        ok.putLong(worker.kvBudgetBytes());
        putString(ok, backend.name());
        write(out, Type.HELLO_OK, ok);

        ByteBuffer a = read(in).expect(Type.ALLOCATE).payload();
        int numBlocks = readInt(a, "block count", 1, Integer.MAX_VALUE);
        int blockSize = readInt(a, "block size", 1, 1 << 16);
        String typeName = readString(a);
        end(a, Type.ALLOCATE);
        KvCacheType type;
        try {
            type = KvCacheType.parse(typeName);
        } catch (IllegalArgumentException e) {
            throw new ProtocolException(e.getMessage());
        }
        long perBlock = KvBlockStore.bytesPerBlock(h.numLayers(), h.numOwnedKvHeads() * h.headDim(), blockSize, type);
        if ((double) perBlock * numBlocks > worker.kvBudgetBytes())
            throw new ProtocolException(numBlocks + " KV blocks of " + perBlock + " bytes for KV heads " + h.kvHeadFrom() + ".." + (h.kvHeadTo() - 1)
                    + " need " + perBlock * numBlocks + " bytes; this memory node has --kv-cache-memory " + worker.kvBudgetBytes());
        sequences = new PagedSequences(backend.allocateKvBlocks(h.numLayers(), h.numOwnedKvHeads(), h.headDim(), blockSize, numBlocks, type));
        int qw = h.numOwnedHeads() * h.headDim(), kw = h.numOwnedKvHeads() * h.headDim(), n = h.maxBatchTokens();
        q = new float[n * qw];
        k = new float[n * kw];
        v = new float[n * kw];
        this.out = new float[n * qw];
        dq = worker.buffer(0, n, qw);
        dk = worker.buffer(1, n, kw);
        dv = worker.buffer(2, n, kw);
        dout = worker.buffer(3, n, qw);
        hello = h;
        write(out, Type.ALLOCATED, payload(0));
        worker.log().printf("attention-worker: serving %s for %s: KV heads %d..%d of %d, %d blocks of %d positions (%s, %.1f MiB), %s on the wire%n",
                peer(), h.model(), h.kvHeadFrom(), h.kvHeadTo() - 1, h.numKvHeads(), numBlocks, blockSize, type,
                perBlock * numBlocks / 1048576.0, h.wire().flag());
    }

    /** Applies the step's releases and table changes and lays out its rows (positions and caches). */
    private void step(AttentionStep s) {
        for (int id : s.released()) sequences.release(id);
        int n = s.numRows();
        if (positions.length < n) {
            positions = new int[n];
            rows = new KvCache[n];
        }
        int row = 0;
        for (AttentionStep.Sequence seq : s.sequences()) {
            KvCache cache = sequences.update(seq.id(), seq.tableFrom(), seq.newBlocks(), seq.startPosition() + seq.numRows());
            for (int i = 0; i < seq.numRows(); i++, row++) {
                positions[row] = seq.startPosition() + i;
                rows[row] = cache;
            }
        }
        numRows = n;
        steps++;
    }

    /** ATTEND: lane, layer, first row and row count within the step, then q, k, v rows; answers OUTPUT. */
    private void attend(ByteBuffer b, DataOutputStream out) throws IOException {
        Hello h = hello;
        need(b, 1, "lane");
        byte lane = b.get();
        int layer = readInt(b, "layer", 0, h.numLayers() - 1);
        int from = readInt(b, "first row", 0, numRows);
        int n = readInt(b, "row count", 1, numRows - from);
        int qw = h.numOwnedHeads() * h.headDim(), kw = h.numOwnedKvHeads() * h.headDim();
        WireFormat wire = h.wire();
        need(b, wire.size(n, qw + 2 * kw), "q, k, v rows");
        wire.get(b, q, n, qw, 0, qw);
        wire.get(b, k, n, kw, 0, kw);
        wire.get(b, v, n, kw, 0, kw);
        end(b, Type.ATTEND);

        long t0 = System.nanoTime();
        Backend backend = worker.backend();
        backend.upload(q, dq, n);
        backend.upload(k, dk, n);
        backend.upload(v, dv, n);
        AttentionBatch batch = new AttentionBatch(n, Arrays.copyOfRange(positions, from, from + n), Arrays.copyOfRange(rows, from, from + n));
        backend.attention(layer, dq, dk, dv, batch, h.numOwnedHeads(), h.numOwnedKvHeads(), h.headDim(), dout);
        backend.download(dout, this.out, n);
        attentionNanos += System.nanoTime() - t0;
        attends++;

        ByteBuffer r = payload(5 + (int) wire.size(n, qw));
        r.put(lane).putInt(layer);
        wire.put(r, this.out, n, qw, 0, qw);
        write(out, Type.OUTPUT, r);
    }
}
