package dev.tessera.offload;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static dev.tessera.offload.OffloadProtocol.*;

/**
 * The compute node's connection to one memory node. Frames from any micro-batch go out under one lock; a reader
 * thread hands each OUTPUT to the mailbox of the micro-batch (lane) it answers. The first failure — a closed socket,
 * an ERROR frame, a bad frame, no answer in time — ends the link and wakes every lane with it.
 */
final class MemoryNodeLink implements AutoCloseable {
    private static final ByteBuffer FAILED = ByteBuffer.allocate(0);

    private final InetSocketAddress address;
    private final Socket socket;
    private final DataInputStream in;
    private final DataOutputStream out;
    private final BlockingQueue<ByteBuffer>[] mailboxes;
    private final Duration timeout;
    private final AtomicLong bytesSent = new AtomicLong(), bytesReceived = new AtomicLong();
    private volatile String failure;
    private long budgetBytes;
    private String device;

    @SuppressWarnings("unchecked")
    private MemoryNodeLink(InetSocketAddress address, Socket socket, int numLanes, Duration timeout) throws IOException {
        this.address = address;
        this.socket = socket;
        this.timeout = timeout;
        in = new DataInputStream(new BufferedInputStream(socket.getInputStream(), 1 << 16));
        out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream(), 1 << 16));
        mailboxes = new BlockingQueue[numLanes];
        for (int i = 0; i < numLanes; i++) mailboxes[i] = new LinkedBlockingQueue<>();
    }

    /** Connects and says hello; the node's answer gives its KV budget. */
    static MemoryNodeLink connect(InetSocketAddress address, Hello hello, int numLanes, Duration timeout) {
        Socket s = new Socket();
        try {
            s.connect(address, (int) Math.min(Integer.MAX_VALUE, timeout.toMillis()));
            s.setTcpNoDelay(true);
            s.setSoTimeout((int) Math.min(Integer.MAX_VALUE, timeout.toMillis()));
            MemoryNodeLink link = new MemoryNodeLink(address, s, numLanes, timeout);
            write(link.out, Type.HELLO, hello.encode());
            ByteBuffer ok = read(link.in).expect(Type.HELLO_OK).payload();
            need(ok, 8, "KV budget");
            link.budgetBytes = ok.getLong();
            link.device = readString(ok);
            return link;
        } catch (IOException e) {
            try {
                s.close();
            } catch (IOException ignored) {
                // failing anyway
            }
            throw new MemoryNodeException("memory node " + name(address) + ": " + describe(e), e);
        }
    }

    /** Sets up the node's KV blocks, then starts reading its answers. */
    void allocate(int numBlocks, int blockSize, String kvCacheType) {
        try {
            ByteBuffer b = payload(10 + stringBytes(kvCacheType));
            b.putInt(numBlocks).putInt(blockSize);
            putString(b, kvCacheType);
            write(out, Type.ALLOCATE, b);
            end(read(in).expect(Type.ALLOCATED).payload(), Type.ALLOCATED);
            socket.setSoTimeout(0);  // from here the reader waits as long as the node is idle; lanes time out instead
        } catch (IOException e) {
            close();
            throw new MemoryNodeException("memory node " + name(address) + ": " + describe(e), e);
        }
        Thread.ofPlatform().name("offload-reader-" + name(address)).daemon().start(this::readLoop);
    }

    long budgetBytes() { return budgetBytes; }
    String device() { return device; }
    InetSocketAddress address() { return address; }
    long bytesSent() { return bytesSent.get(); }
    long bytesReceived() { return bytesReceived.get(); }
    boolean failed() { return failure != null; }

    void send(Type type, ByteBuffer payload) {
        String f = failure;
        if (f != null) throw new MemoryNodeException(f, null);
        synchronized (out) {
            try {
                write(out, type, payload);
            } catch (IOException e) {
                fail(describe(e));
                throw new MemoryNodeException(failure, e);
            }
        }
        bytesSent.addAndGet(payload.position() + HEADER_BYTES + 4);
    }

    /** The next OUTPUT payload for {@code lane} (positioned after lane and layer checks are left to the caller). */
    ByteBuffer await(int lane) {
        ByteBuffer b;
        try {
            b = mailboxes[lane].poll(timeout.toNanos(), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new MemoryNodeException("memory node " + name(address) + ": interrupted while waiting", e);
        }
        if (b == null) {
            fail("no answer within " + timeout.toSeconds() + " s");
            throw new MemoryNodeException(failure, null);
        }
        if (b == FAILED) throw new MemoryNodeException(failure, null);
        return b;
    }

    private void readLoop() {
        try {
            while (failure == null) {
                Frame f = read(in);
                if (f.type() == Type.ERROR) {
                    fail("answered with an error: " + readString(f.payload()));
                    return;
                }
                if (f.type() != Type.OUTPUT) throw new ProtocolException("unexpected " + f.type() + " frame");
                ByteBuffer b = f.payload();
                need(b, 5, "OUTPUT header");
                int lane = b.get(0);
                if (lane < 0 || lane >= mailboxes.length) throw new ProtocolException("OUTPUT for lane " + lane + " of " + mailboxes.length);
                bytesReceived.addAndGet(b.remaining() + HEADER_BYTES + 4);
                mailboxes[lane].add(b);
            }
        } catch (EOFException e) {
            fail("closed the connection");
        } catch (IOException e) {
            fail(describe(e));
        }
    }

    private void fail(String why) {
        synchronized (this) {
            if (failure != null) return;
            failure = "memory node " + name(address) + " " + why;
        }
        for (BlockingQueue<ByteBuffer> m : mailboxes) m.add(FAILED);
        try {
            socket.close();
        } catch (IOException ignored) {
            // already failing
        }
    }

    @Override
    public void close() {
        fail("link closed by the compute node");
    }

    static String name(InetSocketAddress a) {
        return a.getHostString() + ":" + a.getPort();
    }

    private static String describe(IOException e) {
        if (e instanceof EOFException) return "closed the connection";
        if (e instanceof java.net.ConnectException) return "refused the connection (is 'tessera attention-worker' running there?)";
        if (e instanceof java.net.SocketTimeoutException) return "did not answer in time";
        return e.getMessage() == null ? e.toString() : e.getMessage();
    }
}
