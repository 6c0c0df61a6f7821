package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.collective.CollectiveGroup;

import java.io.EOFException;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketAddress;

/**
 * A worker process's control listener (tensor-parallel and expert-parallel workers alike): accepts one master at a
 * time and runs its session; however a session ends, it is logged and the next master is accepted, so a restarted
 * master — or the worker, restarted — simply reconnects.
 */
public final class SessionServer implements AutoCloseable {
    /** One master's session on its control connection, which the server closes after. */
    @FunctionalInterface
    public interface Session {
        void run(Socket control) throws IOException;
    }

    private final ServerSocket control;
    private final String logPrefix;
    private final PrintStream log;
    private volatile boolean closed;

    /** @param logPrefix how log lines start, e.g. "tessera worker" */
    public SessionServer(InetSocketAddress listen, String logPrefix, PrintStream log) {
        this.control = CollectiveGroup.listen(listen);
        this.logPrefix = logPrefix;
        this.log = log;
    }

    public int port() { return control.getLocalPort(); }

    public SocketAddress address() { return control.getLocalSocketAddress(); }

    /** Runs sessions one after another until closed. */
    public void serve(Session session) {
        while (!closed) {
            Socket socket;
            try {
                socket = control.accept();
            } catch (IOException e) {
                if (closed) return;
                log.println(logPrefix + ": accept failed: " + e.getMessage());
                continue;
            }
            try (socket) {
                session.run(socket);
            } catch (EOFException e) {
                log.println(logPrefix + ": master " + socket.getRemoteSocketAddress() + " disconnected");
            } catch (IOException | RuntimeException e) {
                log.println(logPrefix + ": session with " + socket.getRemoteSocketAddress() + " ended: " + e.getMessage());
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        try {
            control.close();
        } catch (IOException ignored) {
            // Closing a listening socket only stops accept.
        }
    }
}
