package dev.tessera.kernels.collective;

import dev.tessera.kernels.collective.CollectiveFrame.Type;
import org.junit.jupiter.api.Test;

import java.io.DataInputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Frames that do not check out, and peers that die or go silent, end an allreduce with a CollectiveException. */
class PeerLinkTest {
    private static final int LENGTH = 1000;
    /** One thread per task: the common pool may have a single thread on a small machine, and ranks must run at once. */
    private static final Executor THREADS = Executors.newVirtualThreadPerTaskExecutor();

    /**
     * Rank 0 of a 2-rank star against a hand-driven "worker" on a raw socket: the worker introduces itself properly,
     * then {@code misbehave} writes whatever it likes. Returns the message rank 0's sum failed with.
     */
    private static String masterFailure(Consumer<OutputStream> misbehave) throws Exception {
        InetAddress loopback = InetAddress.getLoopbackAddress();
        ServerSocket listener = CollectiveGroup.listen(new InetSocketAddress(loopback, 0));
        List<InetSocketAddress> addresses = List.of(new InetSocketAddress(loopback, listener.getLocalPort()),
                new InetSocketAddress(loopback, 0));
        CompletableFuture<AllReduce> master = CompletableFuture.supplyAsync(
                () -> CollectiveGroup.open(AllReduceKind.STAR, 0, addresses, listener, Duration.ofSeconds(5)), THREADS);
        try (Socket raw = new Socket(loopback, listener.getLocalPort())) {
            byte[] hello = new byte[CollectiveFrame.frameBytes(CollectiveFrame.HELLO_WORDS)];
            CollectiveFrame.writeHeader(hello, Type.HELLO, 1, 0, CollectiveFrame.HELLO_WORDS);
            CollectiveFrame.writeInts(hello, 1, 2, AllReduceKind.STAR.ordinal());
            CollectiveFrame.seal(hello, CollectiveFrame.HELLO_WORDS);
            raw.getOutputStream().write(hello);
            new DataInputStream(raw.getInputStream()).readFully(new byte[hello.length]);
            try (AllReduce group = master.get(5, TimeUnit.SECONDS)) {
                Future<?> sum = CompletableFuture.runAsync(() -> group.sum(new float[LENGTH]), THREADS);
                misbehave.accept(raw.getOutputStream());
                ExecutionException e = assertThrows(ExecutionException.class, () -> sum.get(5, TimeUnit.SECONDS));
                assertInstanceOf(CollectiveException.class, e.getCause());
                // The group is broken from then on.
                CollectiveException again = assertThrows(CollectiveException.class, () -> group.sum(new float[LENGTH]));
                assertTrue(again.getMessage().contains("broken"), again.getMessage());
                return e.getCause().getMessage();
            }
        }
    }

    private static byte[] partial(int senderRank, long sequence, int length) {
        byte[] frame = new byte[CollectiveFrame.frameBytes(length)];
        CollectiveFrame.encode(frame, Type.PARTIAL, senderRank, sequence, new float[length], 0, length);
        return frame;
    }

    private static Consumer<OutputStream> writing(byte[] bytes, int count, boolean close) {
        return out -> {
            try {
                out.write(bytes, 0, count);
                out.flush();
                if (close) out.close();
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        };
    }

    @Test
    void rejectsTruncatedFrame() throws Exception {
        byte[] frame = partial(1, 1, LENGTH);
        String message = masterFailure(writing(frame, frame.length / 2, true));
        assertTrue(message.contains("truncated") && message.contains("(rank 1)") && message.contains("127.0.0.1:"), message);
    }

    @Test
    void rejectsWrongMagic() throws Exception {
        byte[] frame = partial(1, 1, LENGTH);
        frame[0] ^= 0x55;
        String message = masterFailure(writing(frame, frame.length, false));
        assertTrue(message.contains("magic") && message.contains("(rank 1)"), message);
    }

    @Test
    void rejectsWrongSequenceTypeAndLength() throws Exception {
        byte[] skipped = partial(1, 2, LENGTH);
        assertTrue(masterFailure(writing(skipped, skipped.length, false)).contains("sequence number 2, expected 1"));
        byte[] shorter = partial(1, 1, LENGTH - 1);
        String m = masterFailure(writing(shorter, shorter.length, false));
        assertTrue(m.contains("999 words, expected 1000"), m);
        byte[] result = new byte[CollectiveFrame.frameBytes(LENGTH)];
        CollectiveFrame.encode(result, Type.RESULT, 1, 1, new float[LENGTH], 0, LENGTH);
        m = masterFailure(writing(result, result.length, false));
        assertTrue(m.contains("RESULT frame, expected PARTIAL"), m);
    }

    @Test
    void rejectsCorruptPayload() throws Exception {
        byte[] frame = partial(1, 1, LENGTH);
        frame[CollectiveFrame.HEADER_BYTES + 7] ^= 1;
        String message = masterFailure(writing(frame, frame.length, false));
        assertTrue(message.contains("CRC32"), message);
    }

    @Test
    void peerClosingMidOperationFailsQuickly() {
        for (AllReduceKind kind : AllReduceKind.values()) {
            assertTimeoutPreemptively(Duration.ofSeconds(5), () -> {
                List<AllReduce> group = CollectiveGroup.openLocal(kind, 3, CollectiveGroup.DEFAULT_TIMEOUT);
                // Ranks 0 and 1 start an allreduce; rank 2 dies instead of joining.
                Future<?> r0 = CompletableFuture.runAsync(() -> group.get(0).sum(new float[70_000]), THREADS);
                Future<?> r1 = CompletableFuture.runAsync(() -> group.get(1).sum(new float[70_000]), THREADS);
                Thread.sleep(50);
                group.get(2).close();
                for (Future<?> f : List.of(r0, r1)) {
                    ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(4, TimeUnit.SECONDS));
                    CollectiveException c = assertInstanceOf(CollectiveException.class, e.getCause());
                    assertTrue(c.getMessage().contains("closed the connection") && c.getMessage().contains("rank "), kind + ": " + c.getMessage());
                }
                group.forEach(AllReduce::close);
            }, kind.flagName());
        }
    }

    @Test
    void silentPeerTimesOut() {
        assertTimeoutPreemptively(Duration.ofSeconds(5), () -> {
            List<AllReduce> group = CollectiveGroup.openLocal(AllReduceKind.STAR, 2, Duration.ofMillis(300));
            long start = System.nanoTime();
            CollectiveException e = assertThrows(CollectiveException.class, () -> group.get(0).sum(new float[10]));
            long millis = (System.nanoTime() - start) / 1_000_000;
            assertTrue(e.getMessage().contains("sent nothing for 300 ms") && e.getMessage().contains("(rank 1)"), e.getMessage());
            assertTrue(millis >= 250 && millis < 3000, "timed out after " + millis + " ms");
            group.forEach(AllReduce::close);
        });
    }

    @Test
    void wrongGroupShapeFailsAtSetUp() throws Exception {
        InetAddress loopback = InetAddress.getLoopbackAddress();
        ServerSocket listener = CollectiveGroup.listen(new InetSocketAddress(loopback, 0));
        InetSocketAddress master = new InetSocketAddress(loopback, listener.getLocalPort());
        CompletableFuture<AllReduce> rank0 = CompletableFuture.supplyAsync(() ->
                CollectiveGroup.open(AllReduceKind.STAR, 0, List.of(master, master), listener, Duration.ofSeconds(3)), THREADS);
        // A worker that believes the group has 3 ranks.
        CollectiveException worker = assertThrows(CollectiveException.class, () ->
                CollectiveGroup.open(AllReduceKind.STAR, 1, List.of(master, master, master), Duration.ofSeconds(3)));
        ExecutionException e = assertThrows(ExecutionException.class, () -> rank0.get(5, TimeUnit.SECONDS));
        assertTrue(e.getCause().getMessage().contains("expected rank 1 of 2"), e.getCause().getMessage());
        assertTrue(worker.getMessage().contains("closed the connection"), worker.getMessage());
    }
}
