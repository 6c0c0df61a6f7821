package dev.tessera.scheduler.parallel;

import java.util.Locale;

/**
 * Per-block timings of one device: compute, allreduce, background load, and how long compute waited for a load
 * (the part of loading not hidden behind compute and communication). Block 2l is layer l's attention, 2l+1 its FFN.
 * Thread-safe: the loader thread records loads, the compute thread the rest.
 */
public final class TpStats {
    private final int numBlocks;
    private final long[] computeNanos, allReduceNanos, loadNanos, waitNanos;
    private final int[] uses, loads;

    public TpStats(int numBlocks) {
        this.numBlocks = numBlocks;
        computeNanos = new long[numBlocks];
        allReduceNanos = new long[numBlocks];
        loadNanos = new long[numBlocks];
        waitNanos = new long[numBlocks];
        uses = new int[numBlocks];
        loads = new int[numBlocks];
    }

    public synchronized void compute(int block, long nanos) { computeNanos[block] += nanos; uses[block]++; }

    public synchronized void allReduce(int block, long nanos) { allReduceNanos[block] += nanos; }

    public synchronized void load(int block, long nanos) { loadNanos[block] += nanos; loads[block]++; }

    public synchronized void waited(int block, long nanos) { waitNanos[block] += nanos; }

    public synchronized long totalComputeNanos() { return sum(computeNanos); }

    public synchronized long totalAllReduceNanos() { return sum(allReduceNanos); }

    public synchronized long totalLoadNanos() { return sum(loadNanos); }

    public synchronized long totalWaitNanos() { return sum(waitNanos); }

    public synchronized int totalLoads() {
        int n = 0;
        for (int l : loads) n += l;
        return n;
    }

    /**
     * One line: per block use averages in milliseconds, and the share of load time hidden behind compute and
     * allreduce (100% when compute never waited for a block).
     */
    public synchronized String summary(String device) {
        int used = 0;
        for (int u : uses) used += u;
        int loaded = totalLoads();
        double perUse = Math.max(1, used);
        long load = sum(loadNanos), wait = sum(waitNanos);
        double hidden = load == 0 ? 100 : Math.max(0, 100.0 * (1 - (double) wait / load));
        return String.format(Locale.ROOT, "%s: %d block uses, %d loads; per block compute %.3f ms, allreduce %.3f ms, load %.3f ms, waited %.3f ms; loading hidden %.0f%%",
                device, used, loaded, sum(computeNanos) / perUse / 1e6, sum(allReduceNanos) / perUse / 1e6,
                loaded == 0 ? 0 : load / (double) loaded / 1e6, wait / perUse / 1e6, hidden);
    }

    public int numBlocks() { return numBlocks; }

    private static long sum(long[] v) {
        long s = 0;
        for (long x : v) s += x;
        return s;
    }
}
