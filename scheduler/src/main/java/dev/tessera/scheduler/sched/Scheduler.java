package dev.tessera.scheduler.sched;

import dev.tessera.scheduler.engine.EngineConfig;
import dev.tessera.scheduler.engine.RequestHandle;
import dev.tessera.scheduler.kv.KvBlockPool;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Decides what runs each step, the way vLLM schedules: sees requests, token counts and KV blocks, never tensors.
 *
 * <p>Every step takes the decode token of each running sequence, then prefill chunks, first come first served,
 * within {@code maxBatchedTokens} and {@code maxNumSeqs}. There is no prefill or decode phase: each sequence's
 * computed count catches up with its token count, a chunk at a time. Full blocks are published to the prefix cache
 * after each step, so a prompt that starts like an earlier one adopts those blocks and skips their prefill. When a
 * running sequence needs a block and none is free, the newest running sequence is preempted: its blocks go back to
 * the pool and it is recomputed later, ahead of new requests, so a request that fits the pool alone always completes.
 */
public final class Scheduler {
    /** What happens to a sequence that leaves: the engine emits its ending. */
    public interface Endings {
        /** It can never fit the pool. */
        void refuse(SequenceState s, String message);

        /** It was cancelled, or the engine is closing. */
        void cancel(SequenceState s);
    }

    private final EngineConfig config;
    private final KvBlockPool pool;
    private final int vocabSize;
    private final int maxSequenceTokens;
    private final Supplier<RequestHandle> waiting;
    private final Endings endings;
    private final List<SequenceState> running = new ArrayList<>();
    /** Preempted sequences, oldest first: they resume before any new request. */
    private final ArrayDeque<SequenceState> preempted = new ArrayDeque<>();
    /** A request taken from the queue that did not fit yet; it is first in line next step. */
    private SequenceState deferred;
    private List<SequenceState> scheduled = List.of();
    private int[] released = new int[8];
    private int numReleased;
    private int nextId;
    private long numPreemptions;

    /** @param waiting polls the next waiting request, null when none */
    public Scheduler(EngineConfig config, KvBlockPool pool, int vocabSize, int maxSequenceTokens,
                     Supplier<RequestHandle> waiting, Endings endings) {
        this.config = config;
        this.pool = pool;
        this.vocabSize = vocabSize;
        this.maxSequenceTokens = maxSequenceTokens;
        this.waiting = waiting;
        this.endings = endings;
    }

    public KvBlockPool pool() { return pool; }

    public int numRunning() { return running.size(); }

    /** Sequences started and waiting to resume, plus one taken from the queue that did not fit yet. */
    public int numPreempted() { return preempted.size() + (deferred == null ? 0 : 1); }

    public long numPreemptions() { return numPreemptions; }

    public boolean isIdle() {
        return running.isEmpty() && preempted.isEmpty() && deferred == null;
    }

    /** Makes a request the next in line (the engine blocked on the queue while idle). */
    public void admit(RequestHandle h) {
        if (deferred != null) throw new IllegalStateException("a request is already first in line");
        deferred = new SequenceState(nextId++, h, vocabSize, maxSequenceTokens, pool);
    }

    /** Forms the next step; null when nothing can run now. */
    public SchedulerOutput schedule() {
        dropCancelled();
        int budget = config.maxBatchedTokens();
        // Logit rows: the runners hold maxNumSeqs of them, one per sequence, which only a prompt being scored outgrows.
        int rowBudget = config.maxNumSeqs();
        List<SequenceState> batch = new ArrayList<>();
        boolean preemptedNow = false;
        // Running sequences first, oldest first: decode tokens, then the next chunks of prompts being prefilled.
        for (int pass = 0; pass < 2; pass++) {
            for (int i = 0; i < running.size() && budget > 0; i++) {
                SequenceState s = running.get(i);
                int pending = s.length - s.numComputed;
                if (s.scheduled > 0 || (pass == 0) != (pending == 1)) continue;
                int take = withinRows(s, Math.min(budget, pending), rowBudget);
                if (take == 0) continue;
                while (!reserve(s, take)) {
                    SequenceState victim = running.getLast();
                    budget += victim.scheduled;
                    if (victim.scheduled > 0) rowBudget += rowsFor(victim, victim.scheduled);
                    batch.remove(victim);
                    preempt(victim);
                    preemptedNow = true;
                    if (victim == s) break;
                }
                if (!running.contains(s)) break;  // s was the newest and is preempted: nothing after it is left
                s.scheduled = take;
                budget -= take;
                rowBudget -= rowsFor(s, take);
                batch.add(s);
            }
        }
        // Then waiting ones, preempted before new, while there is room; none after a preemption in this step.
        while (!preemptedNow && running.size() < config.maxNumSeqs() && budget > 0) {
            SequenceState s = preempted.peekFirst();
            if (s == null) {
                if (deferred == null) {
                    RequestHandle h = waiting.get();
                    if (h == null) break;
                    deferred = new SequenceState(nextId++, h, vocabSize, maxSequenceTokens, pool);
                }
                s = deferred;
                if (s.handle.isCancelled()) { endings.cancel(s); deferred = null; continue; }
                if (waitsForSharedPrefix(s)) break;
            }
            // A prompt being scored computes every position, so it adopts no cached prefix.
            s.numComputed = config.prefixCaching() && !s.scoringPrompt() ? s.table.adoptCachedPrefix(s.history, s.length - 1) : 0;
            int take = withinRows(s, Math.min(budget, s.length - s.numComputed), rowBudget);
            if (take == 0 || !reserve(s, take)) { s.table.free(); s.numComputed = 0; break; }
            if (s == deferred) deferred = null; else preempted.removeFirst();
            if (s.queueNanos < 0) { s.startNanos = System.nanoTime(); s.queueNanos = s.startNanos - s.handle.submitNanos(); }
            running.add(s);
            s.scheduled = take;
            budget -= take;
            rowBudget -= rowsFor(s, take);
            batch.add(s);
        }
        if (batch.isEmpty() && running.isEmpty()) refuseHeadOfLine();
        if (batch.isEmpty()) return null;
        return output(batch);
    }

    /** The step as plain data; the scheduled tokens count as computed from here on. */
    private SchedulerOutput output(List<SequenceState> batch) {
        List<SchedulerOutput.ScheduledSequence> out = new ArrayList<>(batch.size());
        boolean argmaxOnly = true;
        for (SequenceState s : batch) {
            int[] tokens = Arrays.copyOfRange(s.history, s.numComputed, s.numComputed + s.scheduled);
            int start = s.numComputed;
            int from = s.numBlocksSent, to = s.table.numBlocks();
            int[] newBlocks = to > from ? Arrays.copyOfRange(s.table.blockIds(), from, to) : new int[0];
            s.numBlocksSent = to;
            s.numComputed += s.scheduled;
            s.scheduled = 0;
            boolean samples = s.samples();
            if (promptRows(s, start, s.numComputed) > 0) argmaxOnly = false;
            else if (samples) argmaxOnly &= s.sampler.isPlainArgmax() && !s.handle.request().returnLogprobs();
            out.add(new SchedulerOutput.ScheduledSequence(s.id, tokens, start, from, newBlocks, logitRows(s, start, s.numComputed, samples)));
        }
        int[] gone = Arrays.copyOf(released, numReleased);
        numReleased = 0;
        scheduled = batch;
        return new SchedulerOutput(out, gone, argmaxOnly);
    }

    /**
     * Rows of positions [start, end) that score a prompt token: from the first unscored prompt position to the last
     * but one of the prompt (the last prompt position's row samples the first token instead). They end the chunk, or
     * precede its sampled row, so with it they are the chunk's trailing rows.
     */
    public static int promptRows(SequenceState s, int start, int end) {
        if (!s.scoringPrompt()) return 0;
        return Math.max(0, Math.min(end, s.promptLength - 1) - Math.max(start, s.promptScored));
    }

    /**
     * Logit rows of positions [start, end), a chunk's trailing rows: with prompt rows, every row from the first of them
     * to the chunk's end, the last prompt position's too (sampled, or unused when max_tokens is 0); else the last row
     * when it {@code samples}.
     */
    private static int logitRows(SequenceState s, int start, int end, boolean samples) {
        return promptRows(s, start, end) > 0 ? end - Math.max(start, s.promptScored) : samples ? 1 : 0;
    }

    /** Logit rows s may take if {@code take} tokens run from its computed count (its last row counted as sampled). */
    private static int rowsFor(SequenceState s, int take) {
        return logitRows(s, s.numComputed, s.numComputed + take, true);
    }

    /** The most of {@code take} tokens s may run with {@code rows} logit rows left; 0 when it must wait a step. */
    private static int withinRows(SequenceState s, int take, int rows) {
        if (rows <= 0) return 0;
        if (!s.scoringPrompt()) return take;
        return Math.min(take, Math.max(s.numComputed, s.promptScored) - s.numComputed + rows);
    }

    /** The sequences of the step {@link #schedule} last emitted, in row order. */
    public List<SequenceState> scheduled() {
        return scheduled;
    }

    /** After a step ran: publish the full blocks it computed to the prefix cache. */
    public void completed(List<SequenceState> batch) {
        if (!config.prefixCaching()) return;
        for (SequenceState s : batch) if (running.contains(s)) s.table.cacheFullBlocks(s.history, s.numComputed);
    }

    /** A sequence is done (finished or stopped): its blocks go back. */
    public void finish(SequenceState s) {
        running.remove(s);
        release(s);
    }

    /** A step failed as a whole: every running sequence leaves (the caller tells each why); the runners lost all KV. */
    public List<SequenceState> failAll() {
        List<SequenceState> failed = new ArrayList<>(running);
        for (SequenceState s : failed) release(s);
        running.clear();
        numReleased = 0;  // the runners forget everything anyway
        for (SequenceState s : preempted) s.numBlocksSent = 0;
        if (deferred != null) deferred.numBlocksSent = 0;
        pool.dropCachedPrefixes();
        return failed;
    }

    /** Engine closing: every sequence it holds leaves as cancelled. */
    public void cancelAll() {
        for (SequenceState s : running) { release(s); endings.cancel(s); }
        for (SequenceState s : preempted) endings.cancel(s);
        if (deferred != null) endings.cancel(deferred);
        running.clear();
        preempted.clear();
        deferred = null;
    }

    /** Nothing runs and still the next request found no room: it can never fit, so it fails instead of spinning. */
    private void refuseHeadOfLine() {
        SequenceState s = preempted.isEmpty() ? deferred : preempted.removeFirst();
        if (s == null) return;
        if (s == deferred) deferred = null;
        endings.refuse(s, "KV cache of " + pool.numTotal() + " blocks cannot hold " + s.length + " tokens");
    }

    /** Makes room in s's blocks for {@code take} more computed tokens; false when the pool has too few free blocks. */
    private boolean reserve(SequenceState s, int take) {
        int more = s.numComputed + take - s.table.numTokens();
        return more <= 0 || s.table.append(more);
    }

    /** Recompute preemption: the blocks go back, the tokens stay, and the sequence waits at the head of the line. */
    private void preempt(SequenceState s) {
        running.remove(s);
        release(s);
        s.numComputed = 0;
        s.scheduled = 0;
        preempted.addFirst(s);
        numPreemptions++;
    }

    private void release(SequenceState s) {
        s.table.free();
        // Runners that never saw it ignore the id.
        if (numReleased == released.length) released = Arrays.copyOf(released, released.length * 2);
        released[numReleased++] = s.id;
        s.numBlocksSent = 0;
    }

    /**
     * True while a running sequence is still prefilling full blocks this prompt shares: waiting a step or two lets
     * this one adopt them from the prefix cache instead of computing them again ({@code n > 1} siblings, a common
     * system prompt arriving in a burst).
     */
    private boolean waitsForSharedPrefix(SequenceState s) {
        if (!config.prefixCaching() || s.scoringPrompt()) return false;
        int bs = config.blockSize();
        for (SequenceState r : running) {
            if (r.numComputed >= r.promptLength) continue;
            int limit = Math.min(s.length - 1, r.promptLength);
            int shared = Arrays.mismatch(s.history, 0, limit, r.history, 0, limit);
            int sharedBlocks = (shared < 0 ? limit : shared) / bs;
            if (sharedBlocks > 0 && r.numComputed < sharedBlocks * bs) return true;
        }
        return false;
    }

    private void dropCancelled() {
        for (Iterator<SequenceState> it = running.iterator(); it.hasNext(); ) {
            SequenceState s = it.next();
            if (s.handle.isCancelled()) { it.remove(); release(s); endings.cancel(s); }
        }
        for (Iterator<SequenceState> it = preempted.iterator(); it.hasNext(); ) {
            SequenceState s = it.next();
            if (s.handle.isCancelled()) { it.remove(); endings.cancel(s); }
        }
        if (deferred != null && deferred.handle.isCancelled()) { endings.cancel(deferred); deferred = null; }
    }
}
