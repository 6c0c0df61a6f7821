package dev.tessera.offload;

import java.util.concurrent.locks.ReentrantLock;

/**
 * The compute device, taken in turns by the micro-batches of a step (Lamina's staggered pipeline): a micro-batch holds
 * it for its dense work and gives it up while its attention runs on the memory nodes, so the other one computes
 * meanwhile. Counts how long the device was held, to report how much of a step's time it waited on the network.
 */
public final class ComputeTurn {
    private final ReentrantLock lock = new ReentrantLock();
    private long heldSince, busyNanos;

    public void take() {
        lock.lock();
        heldSince = System.nanoTime();
    }

    public void give() {
        busyNanos += System.nanoTime() - heldSince;
        lock.unlock();
    }

    /** Nanoseconds the device has been held in all, since this turn was made. */
    public long busyNanos() {
        lock.lock();
        try {
            return busyNanos;
        } finally {
            lock.unlock();
        }
    }
}
