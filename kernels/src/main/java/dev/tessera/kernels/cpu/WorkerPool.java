package dev.tessera.kernels.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed set of platform threads that split an index range [0, n) into contiguous chunks, which every thread
 * (the caller included) takes from a shared counter until none is left: a thread the machine slows down (a busy
 * VM, a noisy neighbour) then takes fewer chunks instead of holding the others at the barrier. One thread means no
 * hand-off at all. Workers spin a few milliseconds before parking, because ops in a decode step come microseconds apart
 * and decode steps a fraction of a millisecond.
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
    /** The first granule no thread has taken yet. */
    private final AtomicInteger nextUnit = new AtomicInteger();
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
     * Runs task over [0, n) in contiguous chunks aligned to {@code granule}, shared out as threads come free; returns
     * when all are done. A thread may run several chunks (per-thread scratch stays its own). {@code work} estimates
     * the total multiply-adds: small jobs run on the calling thread alone.
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
        nextUnit.set(0);
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
     * Takes chunks until the range is done, each a share of what is left (guided scheduling): long runs first, then
     * ever smaller ones, so the threads finish within a granule or two of each other. With eight equal chunks the caller
     * waited at the end of an op for most of the worker's last one: over a 2-thread Q4_K_M decode (111,219 ops) it
     * waited 1.83-1.90 s in all, 7,700-8,300 times over 50 µs, against 0.74-0.82 s and 780-870 times guided.
     */
    private void runChunks(RangeTask t, int threadIndex) {
        int g = granule, n = rangeEnd, total = (n + g - 1) / g, share = 2 * numThreads;
        for (int start = nextUnit.get(); start < total; start = nextUnit.get()) {
            int size = Math.max(1, (total - start) / share);
            if (nextUnit.compareAndSet(start, start + size)) t.run(threadIndex, start * g, Math.min((start + size) * g, n));
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Thread t : threads) LockSupport.unpark(t);
    }
}
