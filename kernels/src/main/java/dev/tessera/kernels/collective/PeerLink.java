package dev.tessera.kernels.collective;

import dev.tessera.kernels.collective.CollectiveFrame.Header;
import dev.tessera.kernels.collective.CollectiveFrame.Type;

import java.io.BufferedOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One persistent TCP connection to one peer rank. Frames are sent by a dedicated thread so that a rank can send and
 * receive at once (a ring step does both; with large chunks, blocking writes on every rank would deadlock), and every
 * wait is bounded by {@code timeoutMillis}. Not thread-safe beyond that one sender.
 */
final class PeerLink implements AutoCloseable {
    private final Socket socket;
    private final int selfRank;
    private int peerRank;
    private String peerName;
    private Future<?> inFlight;
    private final long timeoutMillis;
    private final InputStream in;
    private final OutputStream out;
    private final ExecutorService sender;
    private long sendSequence;
    private long receiveSequence;
    private byte[] sendFrame = new byte[CollectiveFrame.frameBytes(CollectiveFrame.HELLO_WORDS)];
    private byte[] receiveFrame = new byte[CollectiveFrame.frameBytes(CollectiveFrame.HELLO_WORDS)];
    private float[] scratch = new float[0];

    PeerLink(Socket socket, int selfRank, int peerRank, long timeoutMillis) throws IOException {
        this.socket = socket;
        this.selfRank = selfRank;
        this.peerRank = peerRank;
        this.timeoutMillis = timeoutMillis;
        this.peerName = describe(socket, peerRank);
        socket.setTcpNoDelay(true);
        socket.setSoTimeout((int) Math.min(Integer.MAX_VALUE, timeoutMillis));
        this.in = socket.getInputStream();
        this.out = new BufferedOutputStream(socket.getOutputStream(), 1 << 16);
        this.sender = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "allreduce-send-" + selfRank + "-to-" + peerRank);
            t.setDaemon(true);
            return t;
        });
    }

    static String describe(Socket socket, int peerRank) {
        String address = socket.getInetAddress() == null ? "?" : socket.getInetAddress().getHostAddress() + ":" + socket.getPort();
        return "peer " + address + " (rank " + peerRank + ")";
    }

    String peerName() {
        return peerName;
    }

    int peerRank() {
        return peerRank;
    }

    /** Encodes the frame now (the caller may then modify {@code src}) and writes it on the sender thread. */
    Future<?> sendAsync(Type type, float[] src, int offset, int length) {
        byte[] frame = frameBuffer(length);
        int bytes = CollectiveFrame.encode(frame, type, selfRank, sendSequence++, src, offset, length);
        return inFlight = sender.submit(() -> write(frame, bytes));
    }

    Future<?> sendHelloAsync(int size, AllReduceKind kind) {
        byte[] frame = frameBuffer(CollectiveFrame.HELLO_WORDS);
        CollectiveFrame.writeHeader(frame, Type.HELLO, selfRank, sendSequence++, CollectiveFrame.HELLO_WORDS);
        CollectiveFrame.writeInts(frame, selfRank, size, kind.ordinal());
        CollectiveFrame.seal(frame, CollectiveFrame.HELLO_WORDS);
        int bytes = CollectiveFrame.frameBytes(CollectiveFrame.HELLO_WORDS);
        return inFlight = sender.submit(() -> write(frame, bytes));
    }

    private byte[] frameBuffer(int words) {
        // One reusable frame buffer: the previous send must have been awaited before it is overwritten.
        if (inFlight != null && !inFlight.isDone()) throw new IllegalStateException("send to " + peerName + " still in flight");
        int bytes = CollectiveFrame.frameBytes(words);
        if (sendFrame.length < bytes) sendFrame = new byte[bytes];
        return sendFrame;
    }

    private Void write(byte[] frame, int bytes) throws IOException {
        out.write(frame, 0, bytes);
        out.flush();
        return null;
    }

    /** Waits until a frame from {@link #sendAsync} is written. */
    void awaitSent(Future<?> sent, String during) {
        try {
            sent.get(timeoutMillis, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new CollectiveException(peerName + " accepted no data for " + timeoutMillis + " ms during " + during);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            throw new CollectiveException(peerName + " closed the connection during " + during + " (send failed: "
                    + cause.getMessage() + ")", cause);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CollectiveException("interrupted while sending to " + peerName + " during " + during, e);
        }
    }

    /**
     * Reads the next frame, which must be {@code type} from this peer with the next sequence number and exactly
     * {@code length} floats, and stores (or adds, when {@code add}) them at dst[offset...].
     */
    void receive(Type type, float[] dst, int offset, int length, boolean add, String during) {
        byte[] frame = readFrame(type, length, during);
        if (add && scratch.length < length) scratch = new float[length];
        CollectiveFrame.readFloats(frame, dst, offset, length, add, scratch);
    }

    /** Reads the peer's HELLO and checks it describes the expected rank in a group of this size and algorithm. */
    void receiveHello(int size, AllReduceKind kind) {
        checkHello(readFrame(Type.HELLO, CollectiveFrame.HELLO_WORDS, "connection set-up"), size, kind);
    }

    private void checkHello(byte[] frame, int size, AllReduceKind kind) {
        int rank = CollectiveFrame.readInt(frame, 0);
        int peerSize = CollectiveFrame.readInt(frame, 1);
        int kindOrdinal = CollectiveFrame.readInt(frame, 2);
        if (rank != peerRank || peerSize != size || kindOrdinal != kind.ordinal()) {
            String peerKind = kindOrdinal >= 0 && kindOrdinal < AllReduceKind.values().length
                    ? AllReduceKind.values()[kindOrdinal].flagName() : "algorithm " + kindOrdinal;
            throw new CollectiveException(peerName + " introduced itself as rank " + rank + " of " + peerSize + " ("
                    + peerKind + "), expected rank " + peerRank + " of " + size + " (" + kind.flagName() + ")");
        }
    }

    /**
     * For a link accepted before its peer's rank is known (rank 0 accepting workers, created with peerRank -1): reads
     * the HELLO, checks the rank is one of {@code 1..size-1} and the group matches, and adopts that rank.
     */
    int receiveHelloFromAnyWorker(int size, AllReduceKind kind) {
        byte[] frame = readFrame(Type.HELLO, CollectiveFrame.HELLO_WORDS, "connection set-up");
        int rank = CollectiveFrame.readInt(frame, 0);
        if (rank < 1 || rank >= size) {
            throw new CollectiveException(peerName + " introduced itself as rank " + rank + ", expected a worker rank 1.." + (size - 1));
        }
        peerRank = rank;
        peerName = describe(socket, rank);
        checkHello(frame, size, kind);
        return rank;
    }

    private byte[] readFrame(Type type, int words, String during) {
        int bytes = CollectiveFrame.frameBytes(words);
        if (receiveFrame.length < bytes) receiveFrame = new byte[bytes];
        byte[] frame = receiveFrame;
        readFully(frame, 0, CollectiveFrame.HEADER_BYTES, during, true);
        Header h = CollectiveFrame.readHeader(frame);
        String bad = null;
        if (h.magic() != CollectiveFrame.MAGIC) {
            bad = String.format("a frame with magic 0x%08X, expected 0x%08X (not a Tessera collective peer?)", h.magic(), CollectiveFrame.MAGIC);
        } else if (h.version() != CollectiveFrame.VERSION) {
            bad = "frame version " + h.version() + ", expected " + CollectiveFrame.VERSION;
        } else if (h.type() != type.code) {
            bad = "a " + Type.describe(h.type()) + " frame, expected " + type;
        } else if (peerRank >= 0 && h.senderRank() != peerRank) {
            bad = "a frame from rank " + h.senderRank() + ", expected rank " + peerRank;
        } else if (h.sequence() != receiveSequence) {
            bad = "sequence number " + h.sequence() + ", expected " + receiveSequence;
        } else if (h.words() != words) {
            bad = "a frame of " + Integer.toUnsignedString(h.words()) + " words, expected " + words;
        }
        if (bad != null) throw new CollectiveException(peerName + " sent " + bad + " during " + during);
        readFully(frame, CollectiveFrame.HEADER_BYTES, bytes - CollectiveFrame.HEADER_BYTES, during, false);
        int stored = CollectiveFrame.storedCrc(frame, words);
        int actual = CollectiveFrame.crc(frame, bytes - CollectiveFrame.TRAILER_BYTES);
        if (stored != actual) {
            throw new CollectiveException(String.format("%s sent a frame with CRC32 0x%08X, computed 0x%08X, during %s",
                    peerName, stored, actual, during));
        }
        receiveSequence++;
        return frame;
    }

    private void readFully(byte[] buf, int offset, int length, String during, boolean frameStart) {
        int done = 0;
        try {
            while (done < length) {
                int n = in.read(buf, offset + done, length - done);
                if (n < 0) throw new EOFException();
                done += n;
            }
        } catch (EOFException e) {
            if (frameStart && done == 0) {
                throw new CollectiveException(peerName + " closed the connection during " + during);
            }
            int frameOffset = (frameStart ? 0 : CollectiveFrame.HEADER_BYTES) + done;
            throw new CollectiveException(peerName + " closed the connection mid-frame during " + during
                    + ": truncated frame after " + frameOffset + " bytes");
        } catch (SocketTimeoutException e) {
            throw new CollectiveException(peerName + " sent nothing for " + timeoutMillis + " ms during " + during);
        } catch (IOException e) {
            throw new CollectiveException(peerName + " closed the connection during " + during + " (" + e.getMessage() + ")", e);
        }
    }

    @Override
    public void close() {
        try {
            socket.close();
        } catch (IOException ignored) {
            // Closing is best effort: the peer sees EOF or a reset either way.
        }
        sender.shutdownNow();
    }
}
