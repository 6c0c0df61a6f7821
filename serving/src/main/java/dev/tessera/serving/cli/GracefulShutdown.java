package dev.tessera.serving.cli;

import dev.tessera.serving.ServingContext;
import dev.tessera.serving.http.edge.EdgeServer;
import sun.misc.Signal;
import sun.misc.SignalHandler;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * SIGTERM and SIGINT for {@code tessera serve}: stop taking work (/ready and new requests answer 503, every response
 * closes its connection), let running requests finish within the grace period, end the rest (each stream gets an
 * error event and {@code [DONE]}), then stop and let serve exit 0. A shutdown hook cannot do this: the JVM exits
 * 143 after a signal however its hooks end. A second signal stops at once.
 */
final class GracefulShutdown {
    private GracefulShutdown() {}

    static void onSignals(ServingContext context, EdgeServer edge, long graceMillis, Runnable close) {
        AtomicBoolean started = new AtomicBoolean();
        SignalHandler handler = signal -> {
            if (!started.compareAndSet(false, true)) {
                System.err.println("tessera serve: SIG" + signal.getName() + " again: stopping now");
                close.run();
                return;
            }
            Thread.ofPlatform().name("tessera-shutdown").start(() -> drain(context, edge, graceMillis, close, signal.getName()));
        };
        Signal.handle(new Signal("TERM"), handler);
        Signal.handle(new Signal("INT"), handler);
    }

    private static void drain(ServingContext context, EdgeServer edge, long graceMillis, Runnable close, String signal) {
        try {
            context.drain();
            edge.drain();
            int running = context.inFlight().size();
            System.err.printf("tessera serve: SIG%s: draining %d running requests (grace %.1f s)%n", signal, running, graceMillis / 1000.0);
            // The last part of the grace period is for ending what still runs, so the process is gone by its end.
            long t0 = System.nanoTime();
            long endingMillis = Math.min(2000, graceMillis / 5);
            if (!context.inFlight().awaitIdle(graceMillis - endingMillis)) {
                int ended = context.inFlight().endAll();
                System.err.printf("tessera serve: grace period over: ending %d requests with an error%n", ended);
                long left = graceMillis - (System.nanoTime() - t0) / 1_000_000L;
                context.inFlight().awaitIdle(Math.max(500, left - 200));
            }
            // The last bytes of each answer still pass through the edge.
            edge.awaitQuiet(Math.max(200, graceMillis - (System.nanoTime() - t0) / 1_000_000L));
            System.err.println("tessera serve: stopped");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            close.run();
        }
    }
}
