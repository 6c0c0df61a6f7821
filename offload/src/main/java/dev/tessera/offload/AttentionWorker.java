package dev.tessera.offload;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.Backend;

import java.io.DataOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A memory node ({@code tessera attention-worker}): holds the paged KV cache for the KV heads a compute node assigns
 * it and computes their attention, on {@code backend}, within {@code kvBudgetBytes} of KV memory. It serves one compute
 * node at a time; each connection is a fresh {@link AttentionSession} with empty KV memory, so a compute node that
 * reconnects after a failure starts clean (its engine has failed the requests that were in flight).
 */
public final class AttentionWorker implements AutoCloseable {
    private final Backend backend;
    private final long kvBudgetBytes;
    private final ServerSocket server;
    private final PrintStream log;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition idle = lock.newCondition();
    private AttentionSession active;
    private volatile boolean closed;
    private final Activations[] buffers = new Activations[4];

    public AttentionWorker(Backend backend, long kvBudgetBytes, InetSocketAddress listen, PrintStream log) throws IOException {
        if (kvBudgetBytes < 1) throw new IllegalArgumentException("--kv-cache-memory must be positive");
        this.backend = backend;
        this.kvBudgetBytes = kvBudgetBytes;
        this.log = log;
        this.server = new ServerSocket();
        server.setReuseAddress(true);
        server.bind(listen);
    }

    public int port() {
        return server.getLocalPort();
    }

    long kvBudgetBytes() { return kvBudgetBytes; }
    Backend backend() { return backend; }
    PrintStream log() { return log; }

    /** Accepts compute nodes until closed. */
    public void serve() throws IOException {
        while (!closed) {
            Socket s;
            try {
                s = server.accept();
            } catch (IOException e) {
                if (closed) return;
                throw e;
            }
            s.setTcpNoDelay(true);
            Thread.ofPlatform().name("attention-session-" + s.getRemoteSocketAddress()).daemon().start(() -> admit(s));
        }
    }

    /** Runs the connection's session, or refuses it in one line while another compute node is being served. */
    private void admit(Socket s) {
        AttentionSession session = new AttentionSession(this, s);
        lock.lock();
        try {
            // A compute node that reconnects right after a failure may arrive before its old session has noticed the
            // closed socket: give that one a moment to end.
            long wait = TimeUnit.SECONDS.toNanos(3);
            while (active != null && wait > 0) wait = idle.awaitNanos(wait);
            if (active != null) {
                refuse(s, "busy: this memory node serves the compute node at " + active.peer() + "; one compute node at a time");
                return;
            }
            active = session;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        } finally {
            lock.unlock();
        }
        try {
            session.run();
        } finally {
            lock.lock();
            try {
                active = null;
                idle.signalAll();
            } finally {
                lock.unlock();
            }
        }
    }

    private void refuse(Socket s, String why) {
        log.println("attention-worker: refused " + s.getRemoteSocketAddress() + ": " + why);
        try (s) {
            OffloadProtocol.write(new DataOutputStream(s.getOutputStream()), OffloadProtocol.Type.ERROR, OffloadProtocol.error(why));
        } catch (IOException ignored) {
            // it left already
        }
    }

    /**
     * Activation buffer {@code slot} holding at least [maxTokens][width]: kept from session to session, since a
     * backend frees device buffers only when it closes.
     */
    Activations buffer(int slot, int maxTokens, int width) {
        Activations a = buffers[slot];
        if (a == null || a.maxTokens() < maxTokens || a.width() != width) buffers[slot] = a = backend.allocate(maxTokens, width);
        return a;
    }

    @Override
    public void close() {
        closed = true;
        try {
            server.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }
}
