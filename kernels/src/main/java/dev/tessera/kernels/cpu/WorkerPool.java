package dev.tessera.kernels.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed set of platform threads that split an index range [0, n) into contiguous shares, one per thread (the caller
 * included). Each thread works through its own share front to back, so it reads one contiguous stream of weights; a
 * thread that finishes early takes the back half of what another has left, so a thread the machine slows down (a busy
 * VM, a noisy neighbour) does less instead of holding the others at the barrier. One thread means no hand-off at all.
 * Workers spin a few milliseconds before parking, because ops in a decode step come microseconds apart and decode steps
 * a fraction of a millisecond.
 */
public final class WorkerPool implements AutoCloseable {
    /** Body of a parallel loop over [start, end), run on thread {@code threadIndex}. */
    @FunctionalInterface
    public interface RangeTask {
        void run(int threadIndex, int start, int end);
    }

    private static final int SPIN_ITERATIONS = 20_000;
    /**
     * How long an idle worker spins before it parks: longer than the engine's work between two decode steps. After 20,000
     * spins (0.5 ms on a Zen 4 VM, where a spin-wait hint takes 25 ns) the worker parked about once per step of a
     * 2-thread 1B decode (841 times in 41,412 regions), and the caller's hand-off averaged 5.9 µs, mostly futex wake-ups;
     * spinning 5 ms it parked 45 times and the hand-off averaged 0.7 µs.
     */
    private static final long WORKER_SPIN_NANOS = 5_000_000;

    private final int numThreads;
    private final Thread[] threads;
    private final AtomicInteger pending = new AtomicInteger();
    /**
     * Per thread, at index {@code SLOT * thread}: its share of the current range as (first granule not taken) << 32 |
     * (end granule). The owner takes from the front, others from the back. Slots a cache line apart, so an owner's
     * takes stay in its own core's cache until another thread comes to take.
     */
    private final AtomicLongArray shares;
    private static final int SLOT = 8;
    private volatile long generation;
    private volatile boolean closed;
    private volatile RangeTask task;
    private volatile int rangeEnd;
    private volatile int granule;
    private final Thread[] waiting = new Thread[1];
    private volatile Throwable failure;

    public WorkerPool(int numThreads) {
        if (numThreads < 1) throw new IllegalArgumentException("numThreads must be >= 1, got " + numThreads);
        this.numThreads = numThreads;
        this.threads = new Thread[numThreads - 1];
        this.shares = new AtomicLongArray(SLOT * numThreads);
        for (int i = 0; i < threads.length; i++) {
            int index = i + 1;
            threads[i] = Thread.ofPlatform().daemon().name("tessera-cpu-" + index).start(() -> workLoop(index));
        }
    }

    public int numThreads() {
        return numThreads;
    }

    /** Below this many multiply-adds a hand-off costs more than it saves (tiny models, small ops). */
    static final long MIN_PARALLEL_WORK = 1 << 16;

    /**
     * Runs task over [0, n) in contiguous chunks aligned to {@code granule}, each thread's own share first, then what
     * others have left; returns when all are done. A thread may run several chunks (per-thread scratch stays its own).
     * {@code work} estimates the total multiply-adds: small jobs run on the calling thread alone.
     */
    public void parallelFor(int n, int granule, long work, RangeTask task) {
        if (n <= 0) return;
        if (work < MIN_PARALLEL_WORK) {
            task.run(0, 0, n);
            return;
        }
        int units = (n + granule - 1) / granule;
        if (numThreads == 1 || units == 1) {
            task.run(0, 0, n);
            return;
        }
        this.task = task;
        this.rangeEnd = n;
        this.granule = granule;
        for (int t = 0; t < numThreads; t++)
            shares.set(SLOT * t, share((long) units * t / numThreads, (long) units * (t + 1) / numThreads));
        waiting[0] = Thread.currentThread();
        pending.set(threads.length);
        generation++;
        for (Thread t : threads) LockSupport.unpark(t);
        runChunks(task, 0);
        int spins = 0;
        while (pending.get() != 0) {
            if (++spins > SPIN_ITERATIONS) LockSupport.parkNanos(this, 20_000);
            else Thread.onSpinWait();
        }
        this.task = null;
        Throwable f = failure;
        if (f != null) {
            failure = null;
            // A worker's failure is the caller's failure: rethrow it here instead of losing its rows.
            if (f instanceof RuntimeException re) throw re;
            if (f instanceof Error err) throw err;
            throw new IllegalStateException(f);
        }
    }

    private void workLoop(int index) {
        long seen = 0;
        while (true) {
            int spins = 0;
            long parkAt = 0;
            while (generation == seen && !closed) {
                if ((++spins & 255) == 0) {
                    long now = System.nanoTime();
                    if (parkAt == 0) parkAt = now + WORKER_SPIN_NANOS;
                    else if (now - parkAt > 0) {
                        LockSupport.park(this);
                        continue;
                    }
                }
                Thread.onSpinWait();
            }
            if (closed) return;
            seen = generation;
            try {
                runChunks(task, index);
            } catch (Throwable e) {
                failure = e;
            } finally {
                if (pending.decrementAndGet() == 0) LockSupport.unpark(waiting[0]);
            }
        }
    }

    /**
     * Runs this thread's share front to back, a quarter of what is left at a time (so another thread can take the rest
     * of a slow share), then takes half of the largest share left until none is. Each thread reading one contiguous run
     * of rows matters to the streams the hardware prefetches. Chunks taken in turn from one shared counter (guided
     * scheduling) left each thread jumping between runs: a 2-thread Q4_K matrix-vector product over 512 and 2048 rows
     * (weights from DRAM, Zen 5 VM) took 28-30 and 73-81 µs that way, 20-25 and 64-71 this way, and a Q4_K_M decode's
     * matrices ran 0-8% more steps a second (StreamTiming, alternating).
     */
    private void runChunks(RangeTask t, int threadIndex) {
        int g = granule, n = rangeEnd, own = SLOT * threadIndex;
        while (true) {
            long r = shares.get(own);
            int front = front(r), back = back(r);
            if (front >= back) break;
            int size = Math.max(1, (back - front) / 4);
            if (shares.compareAndSet(own, r, share(front + size, back))) t.run(threadIndex, front * g, Math.min((front + size) * g, n));
        }
        while (true) {
            int victim = -1, most = 0;
            long r = 0;
            for (int v = 0; v < numThreads; v++) {
                long sv = shares.get(SLOT * v);
                if (back(sv) - front(sv) > most) {
                    most = back(sv) - front(sv);
                    victim = v;
                    r = sv;
                }
            }
            if (victim < 0) return;
            // The share as scanned: if its owner or another thread took from it since, the swap fails and the scan repeats.
            int back = back(r), size = (most + 1) / 2;
            if (shares.compareAndSet(SLOT * victim, r, share(front(r), back - size))) t.run(threadIndex, (back - size) * g, Math.min(back * g, n));
        }
    }

    private static long share(long front, long back) {
        return front << 32 | back;
    }

    private static int front(long share) {
        return (int) (share >>> 32);
    }

    private static int back(long share) {
        return (int) share;
    }

    @Override
    public void close() {
        closed = true;
        for (Thread t : threads) LockSupport.unpark(t);
    }
}
