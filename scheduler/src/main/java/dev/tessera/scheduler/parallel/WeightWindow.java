package dev.tessera.scheduler.parallel;

import java.lang.foreign.Arena;

/**
 * The sliding-window weight scheduler of TPI-LLM (arXiv 2410.00531 §3.3). Blocks are used in a fixed cyclic order
 * (attention 0, FFN 0, attention 1, …, then again for the next step). A background thread reads the next blocks into
 * off-heap memory, one {@link Arena} per block, while the current one computes and its allreduce runs; at most
 * {@code window} blocks are resident at once, and a block is freed as soon as it is released.
 * With window 0 (or a window that holds every block) all blocks are loaded once and never released.
 */
public final class WeightWindow implements AutoCloseable {
    /** Reads block {@code index} into memory owned by {@code arena}. Called on the loader thread. */
    @FunctionalInterface
    public interface BlockSource<B> {
        B load(int index, Arena arena);
    }

    private final BlockSource<?> source;
    private final int numBlocks;
    private final int window;
    private final TpStats stats;
    private final Object[] loaded;
    private final Arena[] arenas;
    private final long[] loadNanos;
    private final Thread loader;
    private int resident;
    private int peakResident;
    private int nextToLoad;
    private int nextToUse;
    private boolean closed;
    private RuntimeException failure;

    public WeightWindow(BlockSource<?> source, int numBlocks, int window, TpStats stats) {
        if (window < 0 || window == 1) throw new IllegalArgumentException("memory window must be 0 (everything) or at least 2 blocks, got " + window);
        this.source = source;
        this.numBlocks = numBlocks;
        this.window = window == 0 || window >= numBlocks ? 0 : window;
        this.stats = stats;
        this.loaded = new Object[numBlocks];
        this.arenas = new Arena[numBlocks];
        this.loadNanos = new long[numBlocks];
        if (this.window == 0) {
            for (int i = 0; i < numBlocks; i++) {
                long t0 = System.nanoTime();
                arenas[i] = Arena.ofShared();
                loaded[i] = source.load(i, arenas[i]);
                loadNanos[i] = System.nanoTime() - t0;
                stats.load(i, loadNanos[i]);
            }
            resident = peakResident = numBlocks;
            loader = null;
        } else {
            loader = Thread.ofPlatform().daemon().name("tessera-weight-loader").start(this::loadLoop);
        }
    }

    /** Most blocks resident at once: the window, or every block with window 0. */
    public int window() { return window; }

    public synchronized int peakResidentBlocks() { return peakResident; }

    public synchronized int residentBlocks() { return resident; }

    /** Waits for the next block in cyclic order; the wait (load not hidden behind compute) is recorded. */
    @SuppressWarnings("unchecked")
    public <B> B acquire(int index) {
        long t0 = System.nanoTime();
        synchronized (this) {
            if (window != 0 && index != nextToUse) throw new IllegalStateException("block " + index + " acquired out of order, expected " + nextToUse);
            while (loaded[index] == null) {
                if (failure != null) throw failure;
                if (closed) throw new IllegalStateException("weight window closed");
                try {
                    wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted waiting for block " + index);
                }
            }
            stats.waited(index, System.nanoTime() - t0);
            return (B) loaded[index];
        }
    }

    /** Frees the block at once (window mode) so the loader can bring in the next one. */
    public void release(int index) {
        if (window == 0) return;
        Arena arena;
        synchronized (this) {
            arena = arenas[index];
            loaded[index] = null;
            arenas[index] = null;
        }
        // Free the memory before the loader may count the slot as open, so at most `window` blocks ever exist.
        arena.close();
        synchronized (this) {
            resident--;
            nextToUse = (index + 1) % numBlocks;
            notifyAll();
        }
    }

    private void loadLoop() {
        try {
            while (true) {
                int index;
                synchronized (this) {
                    while (!closed && resident >= window) wait();
                    if (closed) return;
                    index = nextToLoad;
                    nextToLoad = (nextToLoad + 1) % numBlocks;
                    resident++;
                    peakResident = Math.max(peakResident, resident);
                }
                long t0 = System.nanoTime();
                Arena arena = Arena.ofShared();
                Object block;
                try {
                    block = source.load(index, arena);
                } catch (RuntimeException e) {
                    arena.close();
                    throw e;
                }
                long took = System.nanoTime() - t0;
                stats.load(index, took);
                synchronized (this) {
                    if (closed) { arena.close(); return; }
                    arenas[index] = arena;
                    loaded[index] = block;
                    notifyAll();
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            synchronized (this) {
                failure = e;
                notifyAll();
            }
        }
    }

    @Override
    public void close() {
        synchronized (this) {
            if (closed) return;
            closed = true;
            notifyAll();
        }
        if (loader != null) {
            try {
                loader.join(10_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        synchronized (this) {
            for (int i = 0; i < numBlocks; i++) {
                if (arenas[i] != null) arenas[i].close();
                arenas[i] = null;
                loaded[i] = null;
            }
        }
    }
}
