package dev.tessera.scheduler.sched;

import dev.tessera.models.sample.Sampler;
import dev.tessera.models.sample.TokenLogprob;
import dev.tessera.scheduler.engine.EngineRequest;
import dev.tessera.scheduler.engine.RequestHandle;
import dev.tessera.scheduler.kv.BlockTable;
import dev.tessera.scheduler.kv.KvBlockPool;

import java.util.Arrays;

/**
 * One request as the scheduler tracks it: its tokens so far, how many have K/V in its blocks, its block table and
 * how much of that table the runners have been sent, and its sampler. Engine-thread only.
 */
public final class SequenceState {
    public final int id;
    public final RequestHandle handle;
    public final int promptLength;
    /** The most tokens it may generate: its max_tokens, or less when the context ends first. */
    public final int limit;
    /** Prompt then generated tokens; entries past {@link #length} are unused. */
    public final int[] history;
    public final Sampler sampler;
    final BlockTable table;
    public long queueNanos = -1;
    public long startNanos;
    public long firstTokenNanos;
    /** Tokens known: prompt plus generated. */
    public int length;
    /** Tokens whose K/V are in the cache (or are being computed by the step in flight). */
    int numComputed;
    public int numDelivered;
    /** Tokens of this sequence in the step being formed. */
    int scheduled;
    /** Leading block-table entries the runners know; 0 after a release (they forget the table). */
    int numBlocksSent;
    /**
     * Prompt positions whose row has scored the next prompt token, [0, promptScored), when the request asks for the
     * prompt's log-probabilities: entry p of {@link #promptChosen} and {@link #promptTop} is token p + 1's.
     */
    public int promptScored;
    public final TokenLogprob[] promptChosen;
    public final TokenLogprob[][] promptTop;
    /** The prompt's log-probabilities went out (they go once, before the first token). */
    public boolean promptLogprobsSent;

    SequenceState(int id, RequestHandle handle, int vocabSize, int maxSequenceTokens, KvBlockPool pool) {
        this.id = id;
        this.handle = handle;
        EngineRequest r = handle.request();
        this.promptLength = r.promptTokens().length;
        this.limit = Math.min(r.maxTokens(), maxSequenceTokens - promptLength);
        this.history = Arrays.copyOf(r.promptTokens(), promptLength + limit);
        this.length = promptLength;
        this.sampler = new Sampler(r.params(), vocabSize);
        this.table = new BlockTable(pool);
        int scored = r.scoresPrompt() ? promptLength - 1 : 0;
        this.promptChosen = new TokenLogprob[scored];
        this.promptTop = new TokenLogprob[scored][];
    }

    /** Whether rows of this sequence's prompt still have to be scored (the request asks for prompt logprobs). */
    public boolean scoringPrompt() {
        return promptScored < promptChosen.length;
    }

    /** Tokens whose K/V are in the cache or being computed by the step in flight. */
    public int numComputed() {
        return numComputed;
    }

    /** Whether this step computes the last known token. */
    public boolean catchesUp() {
        return numComputed == length;
    }

    /** Whether this step's last row is sampled: it catches up and may generate (max_tokens 0 only computes the prompt). */
    public boolean samples() {
        return catchesUp() && limit > 0;
    }
}
