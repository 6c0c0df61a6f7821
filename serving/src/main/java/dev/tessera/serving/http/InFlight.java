package dev.tessera.serving.http;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The generations the server is running now. A graceful shutdown waits here for them to finish, and at the end of
 * its grace period ends the rest: each stream then gets an error event and {@code [DONE]}, each whole response a 503.
 */
public final class InFlight {
    private final Set<Generation> active = ConcurrentHashMap.newKeySet();

    void add(Generation g) {
        active.add(g);
    }

    void remove(Generation g) {
        active.remove(g);
    }

    public int size() {
        return active.size();
    }

    /** Waits until none runs or the time is up; true when none runs. */
    public boolean awaitIdle(long millis) throws InterruptedException {
        long end = System.nanoTime() + millis * 1_000_000L;
        while (!active.isEmpty()) {
            if (System.nanoTime() >= end) return false;
            Thread.sleep(20);
        }
        return true;
    }

    /** Ends every running generation because the server is stopping; returns how many. */
    public int endAll() {
        int n = 0;
        for (Generation g : active) {
            g.endForShutdown();
            n++;
        }
        return n;
    }
}
