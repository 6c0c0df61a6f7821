package dev.tessera.scheduler.engine;

import dev.tessera.models.sample.TokenLogprob;
import dev.tessera.scheduler.sched.Scheduler;
import dev.tessera.scheduler.sched.SequenceState;

import java.util.List;

/**
 * The update half of a step: turns what the runner returned (logit rows, or ids when every row was plain greedy) into
 * each sequence's next token, emits it, and finishes sequences that hit a stop token or their limit.
 */
final class TokenSampling {
    private static final TokenLogprob[] NO_LOGPROBS = new TokenLogprob[0];

    private final Scheduler scheduler;
    private final int vocabSize;
    private float[] row = new float[0];

    TokenSampling(Scheduler scheduler, int vocabSize) {
        this.scheduler = scheduler;
        this.vocabSize = vocabSize;
    }

    /**
     * @param sampled the sequences whose last row is sampled this step, in row order
     * @param rows    each one's logit row
     * @param logits  the step's logit rows when not argmax-only, else null
     * @param ids     the rows' argmax ids when argmax-only, else null
     */
    void update(List<SequenceState> sampled, int[] rows, float[] logits, int[] ids) {
        long now = System.nanoTime();
        if (logits != null && row.length != vocabSize) row = new float[vocabSize];
        for (int i = 0; i < sampled.size(); i++) {
            SequenceState s = sampled.get(i);
            int token;
            if (ids != null) {
                token = ids[rows[i]];
                if (token < 0) throw s.sampler.noFiniteLogitError();
            } else {
                System.arraycopy(logits, rows[i] * vocabSize, row, 0, vocabSize);
                token = s.sampler.sample(row, s.history, s.length);
            }
            if (s.numDelivered == 0) s.firstTokenNanos = now;
            EngineRequest req = s.handle.request();
            if (req.isStop().test(token)) { finish(s, FinishReason.STOP); continue; }
            s.history[s.length++] = token;
            s.handle.emit(new TokenEvent.Token(token, req.returnLogprobs() ? s.sampler.chosen() : null,
                    req.returnLogprobs() ? s.sampler.top() : NO_LOGPROBS));
            s.numDelivered++;
            if (s.length - s.promptLength >= s.limit) finish(s, FinishReason.LENGTH);
        }
    }

    void finish(SequenceState s, FinishReason reason) {
        scheduler.finish(s);
        s.handle.emit(finished(s, reason));
    }

    static TokenEvent.Finished finished(SequenceState s, FinishReason reason) {
        long now = System.nanoTime();
        long start = s.queueNanos < 0 ? now : s.startNanos;
        long first = s.firstTokenNanos > 0 ? s.firstTokenNanos : now;
        long queue = s.queueNanos < 0 ? now - s.handle.submitNanos() : s.queueNanos;
        return new TokenEvent.Finished(reason, s.promptLength, s.numDelivered, queue, first - start, now - first);
    }
}
